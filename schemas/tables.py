"""SQLAlchemy Core tables of moodstream's PostgreSQL schema (the Database contract).

Dimension tables ``stores`` and ``cameras`` are synced from stores.yaml (rows are never deleted,
only disabled). Fact tables ``emotion_counts`` and ``frame_losses`` hold one row per
(bucket_start, store_id, camera_id); writers upsert them so a redelivered frame is harmless.
``applied_frames`` is internal bookkeeping of the aggregator (which frames were already counted);
the read-only reporting role cannot read it.

Fact tables carry no foreign key to ``cameras`` on purpose: a stage running on its own against an
external database must never lose counts because the registry was synced later. The views left-join.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Time,
    func,
)

from moodstream.schemas.labels import EMOTIONS

NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamps() -> list[Column[object]]:
    """created_at / updated_at columns (timestamptz, set by the server)."""
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


stores = Table(
    "stores",
    metadata,
    Column("id", Text, primary_key=True, comment="stable store id from stores.yaml"),
    Column("name", Text, nullable=False),
    Column("branch", Text, nullable=False, comment="per-branch reports group by this"),
    Column("timezone", Text, nullable=False, comment="IANA time zone of the store"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    *_timestamps(),
    comment="Stores of the camera registry; never deleted, disabled when removed from stores.yaml.",
)

cameras = Table(
    "cameras",
    metadata,
    Column("store_id", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("source_redacted", Text, nullable=False, comment="camera source with any password as ***"),
    Column("fps", Float, nullable=False, comment="frames sampled per second"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    *_timestamps(),
    PrimaryKeyConstraint("store_id", "id"),
    ForeignKeyConstraint(["store_id"], ["stores.id"]),
    CheckConstraint("fps > 0", name="fps_positive"),
    comment="Cameras of the registry; never deleted, disabled when removed from stores.yaml.",
)

DWELL_BINS: Final[tuple[tuple[str, float, float | None], ...]] = (
    ("dwell_lt_10s", 0.0, 10.0),
    ("dwell_10_30s", 10.0, 30.0),
    ("dwell_30_120s", 30.0, 120.0),
    ("dwell_120_600s", 120.0, 600.0),
    ("dwell_ge_600s", 600.0, None),
)
"""Dwell histogram columns of ``emotion_counts``: (column, lower bound included, upper bound excluded or
None) in seconds; every visit falls in exactly one."""

VISIT_EMOTION_COLUMNS: Final[tuple[str, ...]] = tuple(f"visits_{e}" for e in EMOTIONS)
"""Visits per emotion (the argmax of the mean of each visit's votes), EMOTIONS order."""

FACE_EMOTION_COLUMNS: Final[tuple[str, ...]] = tuple(f"faces_{e}" for e in EMOTIONS)
"""Classified faces per emotion (each vote's argmax, in the bucket of its capture time), EMOTIONS order."""

DWELL_COLUMNS: Final[tuple[str, ...]] = tuple(name for name, _, _ in DWELL_BINS)
DWELL_LABELS: Final[tuple[str, ...]] = tuple(
    (f">= {low:g} s" if high is None else f"{low:g}-{high:g} s" if low else f"< {high:g} s")
    for _, low, high in DWELL_BINS
)
"""Short label of each dwell bin for reports and dashboards: ``< 10 s``, ``10-30 s``, ..., ``>= 600 s``."""

VISIT_COUNT_COLUMNS: Final[tuple[str, ...]] = ("visits", "readable_visits", *VISIT_EMOTION_COLUMNS)
FACE_COUNT_COLUMNS: Final[tuple[str, ...]] = ("faces", "readable_faces", *FACE_EMOTION_COLUMNS)
COUNT_COLUMNS: Final[tuple[str, ...]] = ("frames", *VISIT_COUNT_COLUMNS, *DWELL_COLUMNS, *FACE_COUNT_COLUMNS)
"""The integer counters of ``emotion_counts`` (writers add to them; all start at 0)."""


def _dwell_words(low: float, high: float | None) -> str:
    if high is None:
        return f"visits that lasted {low:g} s or more"
    return f"visits that lasted {low:g} s to under {high:g} s" if low else f"visits shorter than {high:g} s"


COUNT_COMMENTS: Final[dict[str, str]] = {
    "frames": "frames analysed",
    "visits": "visits that started in this bucket (one person seen by one camera, from appearing to leaving)",
    "readable_visits": "visits with at least one readable face (only those have an emotion)",
    **{f"visits_{e}": f"readable visits whose emotion is {e}" for e in EMOTIONS},
    **{name: _dwell_words(low, high) for name, low, high in DWELL_BINS},
    "faces": "faces detected",
    "readable_faces": "faces that passed the quality gate",
    **{f"faces_{e}": f"classified faces (votes) whose emotion is {e}" for e in EMOTIONS},
}
"""Column comments of the counters (the migration writes the same words)."""


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, server_default="0", comment=COUNT_COMMENTS[name])


def _dwell_sum() -> Column[float]:
    return Column(
        "dwell_seconds_sum",
        Float,
        nullable=False,
        server_default="0",
        comment="sum of the dwell times (first to last sighting) of the visits, seconds",
    )


emotion_counts = Table(
    "emotion_counts",
    metadata,
    Column("bucket_start", DateTime(timezone=True), nullable=False, comment="UTC start of the bucket"),
    Column("store_id", Text, nullable=False),
    Column("camera_id", Text, nullable=False),
    Column("bucket_seconds", Integer, nullable=False, comment="width of the bucket in seconds"),
    _count("frames"),
    *[_count(c) for c in VISIT_COUNT_COLUMNS],
    _dwell_sum(),
    *[_count(c) for c in (*DWELL_COLUMNS, *FACE_COUNT_COLUMNS)],
    Column("last_frame_at", DateTime(timezone=True), nullable=True, comment="newest capture time counted"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("bucket_start", "store_id", "camera_id"),
    CheckConstraint("bucket_seconds > 0", name="bucket_seconds_positive"),
    CheckConstraint(
        " AND ".join(f"{c} >= 0" for c in (*COUNT_COLUMNS, "dwell_seconds_sum")), name="counts_not_negative"
    ),
    Index(None, "store_id", "camera_id", "bucket_start"),
    comment="Visits, dwell and emotion counts per capture-time bucket and camera (aggregates only: no "
    "face image, no per-person row, no track id).",
)

ZONE_COUNT_COLUMNS: Final[tuple[str, ...]] = (*VISIT_COUNT_COLUMNS, *DWELL_COLUMNS)
"""The integer counters of ``zone_visits``: the visit columns of ``emotion_counts``, for one zone."""

zone_visits = Table(
    "zone_visits",
    metadata,
    Column("bucket_start", DateTime(timezone=True), nullable=False, comment="UTC start of the bucket"),
    Column("store_id", Text, nullable=False),
    Column("camera_id", Text, nullable=False),
    Column("zone", Text, nullable=False, comment="zone id of the camera (stores.yaml cameras[].zones)"),
    Column("bucket_seconds", Integer, nullable=False, comment="width of the bucket in seconds"),
    *[_count(c) for c in VISIT_COUNT_COLUMNS],
    _dwell_sum(),
    *[_count(c) for c in DWELL_COLUMNS],
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("bucket_start", "store_id", "camera_id", "zone"),
    CheckConstraint("bucket_seconds > 0", name="bucket_seconds_positive"),
    CheckConstraint(
        " AND ".join(f"{c} >= 0" for c in (*ZONE_COUNT_COLUMNS, "dwell_seconds_sum")),
        name="counts_not_negative",
    ),
    Index(None, "store_id", "camera_id", "zone", "bucket_start"),
    comment="Visits per capture-time bucket, camera and zone: a visit counts in the zone that held its "
    "face in most of its frames; visits in no zone are only in emotion_counts (aggregates only).",
)

frame_losses = Table(
    "frame_losses",
    metadata,
    Column("bucket_start", DateTime(timezone=True), nullable=False, comment="UTC start of the bucket"),
    Column("store_id", Text, nullable=False),
    Column("camera_id", Text, nullable=False),
    Column("shed", Integer, nullable=False, server_default="0", comment="frames dropped by stream caps"),
    Column("dead", Integer, nullable=False, server_default="0", comment="frames sent to the dead stream"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("bucket_start", "store_id", "camera_id"),
    CheckConstraint("shed >= 0 AND dead >= 0", name="losses_not_negative"),
    comment="Frames lost per bucket and camera: shed by stream caps or sent to the dead stream.",
)

applied_frames = Table(
    "applied_frames",
    metadata,
    Column("store_id", Text, nullable=False),
    Column("camera_id", Text, nullable=False),
    Column("stream_epoch", BigInteger, nullable=False, comment="one ingest run of the camera"),
    Column("seq", BigInteger, nullable=False, comment="frame sequence number within the epoch"),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("store_id", "camera_id", "stream_epoch", "seq"),
    Index(None, "applied_at"),
    comment="Internal: frames the aggregator already counted (idempotent redelivery).",
)

privacy_settings = Table(
    "privacy_settings",
    metadata,
    Column("id", Boolean, nullable=False, server_default="true"),
    Column(
        "min_visits",
        Integer,
        nullable=False,
        server_default="0",
        comment=(
            "store-local hours with fewer visits (people) than this show no emotion to the read-only role "
            "(0: none)"
        ),
    ),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("id"),
    CheckConstraint("id", name="one_row"),
    CheckConstraint("min_visits >= 0 AND min_visits <= 1000000", name="min_visits_range"),
    comment=(
        "Privacy policy (one row, owned by the writer): the views granted to the read-only role apply it."
    ),
)

MAX_MIN_VISITS: Final[int] = 1_000_000
"""Upper bound of ``privacy_settings.min_visits`` (the table's check constraint)."""

opening_hours = Table(
    "opening_hours",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("store_id", Text, nullable=False),
    Column("weekday", SmallInteger, nullable=True, comment="ISO weekday (1 Monday ... 7 Sunday) of the week"),
    Column("day", Date, nullable=True, comment="local date of an exception to the week"),
    Column("opens", Time, nullable=True, comment="local opening time; NULL: closed all that day"),
    Column("closes", Time, nullable=True, comment="local closing time (24:00:00: the end of the day)"),
    ForeignKeyConstraint(["store_id"], ["stores.id"]),
    CheckConstraint("(weekday IS NULL) <> (day IS NULL)", name="weekday_or_day"),
    CheckConstraint("weekday BETWEEN 1 AND 7", name="iso_weekday"),
    CheckConstraint("(opens IS NULL) = (closes IS NULL) AND (opens IS NULL OR opens < closes)", name="range"),
    Index(None, "store_id"),
    comment="Opening hours of the stores that have them (stores.yaml hours), in each store's local time: one "
    "row per range of a weekday or of an exception date, or one row with NULL times for a closed day. A "
    "store without rows is always open. store_is_open(store_id, at) answers from them.",
)

PUBLIC_TABLES: Final[tuple[str, ...]] = ("stores", "cameras", "frame_losses", "opening_hours")
"""Tables the read-only reporting role may SELECT (none of them holds an emotion)."""

PUBLIC_VIEWS: Final[tuple[str, ...]] = (
    "camera_activity_v",
    "camera_status_v",
    "store_hourly_v",
    "store_daily_v",
)
"""Views the read-only role may SELECT (Grafana, analysts): activity per camera without emotions, and
emotions per store-local hour / day with small groups suppressed by ``privacy_settings.min_visits``."""

PUBLIC_FUNCTIONS: Final[tuple[str, ...]] = (
    "store_hours(timestamptz, timestamptz)",
    "store_is_open(text, timestamptz)",
)
"""Functions the read-only role may EXECUTE: ``store_hours(from, to)`` is ``store_hourly_v`` for the hours
that start in a range, read through the ``bucket_start`` index (what the dashboards query)."""

WRITER_VIEWS: Final[tuple[str, ...]] = ("emotion_counts_v", "branch_daily_v")
"""Unsuppressed views of the raw counts, for the writer's reports only (the reader cannot SELECT them)."""

INTERNAL_TABLES: Final[tuple[str, ...]] = (
    "emotion_counts",
    "zone_visits",
    "applied_frames",
    "privacy_settings",
)
"""Tables hidden from the read-only role (raw counts, per camera and per zone, aggregator bookkeeping, the
privacy policy). Per-zone visits are reported by the writer's ``moodstream report --zone`` only: no
suppressing reader view covers them yet."""
