"""Policy in the database: small-group suppression applied by the views the read-only role is granted.

* ``privacy_settings`` (one row, owned by the writer): ``min_visits``, the suppression threshold.
* ``camera_activity_v``: per bucket and camera, what carries no emotion (frames, visits, dwell, faces,
  last frame seen).
* ``store_hourly_v``: per store and store-local hour, the emotion columns (and their denominators
  ``readable_visits`` / ``classified_faces``) NULL when the hour had fewer visits than ``min_visits``.
* ``store_daily_v``: per store and store-local day, sums of ``store_hourly_v`` (so a day never reveals a
  suppressed hour by subtraction).
* ``store_hours(from, to)``: the rows of ``store_hourly_v`` whose hour starts in the range, found through the
  ``bucket_start`` index (SECURITY DEFINER, EXECUTE for the reader only): what the dashboards query.

The reader role loses SELECT on ``emotion_counts``, ``emotion_counts_v`` and ``branch_daily_v`` (the
writer's reports keep them) and gets SELECT on the three views instead. The views run with their owner's
(the writer's) rights, so the reader never needs ``privacy_settings`` or the raw table.

Revision ID: 0003_policy_suppression
Revises: 0002_visits
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0003_policy_suppression"
down_revision = "0002_visits"
branch_labels = None
depends_on = None

# Frozen copies of the contract at this revision (a migration must not change when tables.py does).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEGATIVE = ("angry", "disgust", "fear", "sad")
DWELL = ("dwell_lt_10s", "dwell_10_30s", "dwell_30_120s", "dwell_120_600s", "dwell_ge_600s")
SETTINGS_COMMENT = (
    "Privacy policy (one row, owned by the writer): the views granted to the read-only role apply it."
)
MIN_VISITS_COMMENT = (
    "store-local hours with fewer visits (people) than this show no emotion to the read-only role (0: none)"
)
READER_VIEWS = ("camera_activity_v", "store_hourly_v", "store_daily_v")
RAW_FOR_WRITER_ONLY = ("emotion_counts", "emotion_counts_v", "branch_daily_v")
OLD_READER_OBJECTS = (
    "stores",
    "cameras",
    "emotion_counts",
    "frame_losses",
    "emotion_counts_v",
    "branch_daily_v",
)

CAMERA_ACTIVITY_V = f"""
CREATE VIEW camera_activity_v WITH (security_barrier) AS
SELECT ec.bucket_start,
       ec.bucket_start + make_interval(secs => ec.bucket_seconds) AS bucket_end,
       ec.bucket_seconds,
       ec.store_id,
       s.name AS store_name,
       s.branch,
       COALESCE(s.timezone, 'UTC') AS timezone,
       ec.camera_id,
       c.name AS camera_name,
       ec.frames,
       ec.visits,
       ec.dwell_seconds_sum::float8 AS dwell_seconds_sum,
       {", ".join(f"ec.{d}" for d in DWELL)},
       ec.faces,
       ec.readable_faces,
       ec.last_frame_at
FROM emotion_counts ec
LEFT JOIN stores s ON s.id = ec.store_id
LEFT JOIN cameras c ON c.store_id = ec.store_id AND c.id = ec.camera_id
"""


def _index(counts: dict[str, str], denominator: str) -> str:
    negative = " + ".join(counts[e] for e in NEGATIVE)
    return f"({counts['happy']} - ({negative}))::float8 / NULLIF({denominator}, 0)"


COUNTS = (
    "frames",
    "visits",
    "readable_visits",
    *(f"visits_{e}" for e in EMOTIONS),
    *DWELL,
    "faces",
    "readable_faces",
    *(f"faces_{e}" for e in EMOTIONS),
)
"""The counters of emotion_counts the hourly views sum (named, so a later column is no dependency)."""


def _hourly_sums() -> str:
    sums = [f"SUM(r.{n})::bigint AS {n}" for n in COUNTS]
    classified = " + ".join(f"r.faces_{e}" for e in EMOTIONS)
    sums += [
        f"SUM({classified})::bigint AS classified_faces",
        "SUM(r.dwell_seconds_sum)::float8 AS dwell_seconds_sum",
    ]
    return ",\n         ".join(sums)


def _shown(expression: str, alias: str) -> str:
    return f"CASE WHEN h.visits >= p.min_visits THEN {expression} END AS {alias}"


def _hourly_columns() -> str:
    visit_counts = {e: f"h.visits_{e}" for e in EMOTIONS}
    face_counts = {e: f"h.faces_{e}" for e in EMOTIONS}
    columns = [
        "h.frames",
        "h.visits",
        "h.dwell_seconds_sum",
        "h.dwell_seconds_sum / NULLIF(h.visits, 0) AS dwell_seconds_mean",
        *(f"h.{d}" for d in DWELL),
        "h.faces",
        "h.readable_faces",
        "h.visits < p.min_visits AS suppressed",
        _shown("h.readable_visits", "readable_visits"),
        *(_shown(f"h.visits_{e}", f"visits_{e}") for e in EMOTIONS),
        _shown(_index(visit_counts, "h.readable_visits"), "visit_satisfaction_index"),
        _shown("h.classified_faces", "classified_faces"),
        *(_shown(f"h.faces_{e}", f"faces_{e}") for e in EMOTIONS),
        _shown(_index(face_counts, "h.classified_faces"), "face_satisfaction_index"),
    ]
    return ",\n       ".join(columns)


def _hours(bucket_filter: str = "", hour_filter: str = "") -> str:
    """SELECT of the suppressed store-local hours (``bucket_filter`` on ``ec``, ``hour_filter`` on ``h``)."""
    return f"""SELECT h.hour_start,
       h.hour_start + interval '1 hour' AS hour_end,
       h.local_hour,
       h.local_hour::date AS local_day,
       h.store_id,
       s.name AS store_name,
       s.branch,
       h.timezone,
       {_hourly_columns()}
FROM (
  SELECT r.store_id, r.timezone,
         r.bucket_start - (r.local_start - date_trunc('hour', r.local_start)) AS hour_start,
         date_trunc('hour', r.local_start) AS local_hour,
         {_hourly_sums()}
  FROM (
    SELECT ec.store_id, ec.bucket_start, {", ".join(f"ec.{n}" for n in COUNTS)}, ec.dwell_seconds_sum,
           COALESCE(st.timezone, 'UTC') AS timezone,
           ec.bucket_start AT TIME ZONE COALESCE(st.timezone, 'UTC') AS local_start
    FROM public.emotion_counts ec
    LEFT JOIN public.stores st ON st.id = ec.store_id
    {bucket_filter}
  ) AS r
  GROUP BY r.store_id, r.timezone, 3, 4
) AS h
LEFT JOIN public.stores s ON s.id = h.store_id
CROSS JOIN public.privacy_settings p
{hour_filter}"""


STORE_HOURLY_V = f"""
CREATE VIEW store_hourly_v WITH (security_barrier) AS
{_hours()}
"""

STORE_HOURS = f"""
CREATE FUNCTION store_hours(range_from timestamptz, range_to timestamptz)
RETURNS SETOF store_hourly_v
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
{
    _hours(
        "WHERE ec.bucket_start >= range_from AND ec.bucket_start < range_to + interval '1 hour'",
        "WHERE h.hour_start BETWEEN range_from AND range_to",
    )
}
$body$
"""
"""``store_hourly_v`` of the hours that start in [range_from, range_to], read through the bucket_start index
(the view's filter on the hour cannot use it): what the dashboards query. It runs with its owner's (the
writer's) rights; only the reader may EXECUTE it."""
STORE_HOURS_SIGNATURE = "store_hours(timestamptz, timestamptz)"


def _daily_columns() -> str:
    visit_counts = {e: f"SUM(v.visits_{e})" for e in EMOTIONS}
    face_counts = {e: f"SUM(v.faces_{e})" for e in EMOTIONS}
    plain = ["frames", "visits", *DWELL, "faces", "readable_faces"]
    shown = [
        "readable_visits",
        *(f"visits_{e}" for e in EMOTIONS),
        "classified_faces",
        *(f"faces_{e}" for e in EMOTIONS),
    ]
    columns = [
        *(f"SUM(v.{n})::bigint AS {n}" for n in plain),
        "SUM(v.dwell_seconds_sum)::float8 AS dwell_seconds_sum",
        "SUM(v.dwell_seconds_sum)::float8 / NULLIF(SUM(v.visits), 0) AS dwell_seconds_mean",
        "(count(*) FILTER (WHERE v.suppressed))::bigint AS suppressed_hours",
        *(f"SUM(v.{n})::bigint AS {n}" for n in shown),
        f"{_index(visit_counts, 'SUM(v.readable_visits)')} AS visit_satisfaction_index",
        f"{_index(face_counts, 'SUM(v.classified_faces)')} AS face_satisfaction_index",
    ]
    return ",\n       ".join(columns)


STORE_DAILY_V = f"""
CREATE VIEW store_daily_v WITH (security_barrier) AS
SELECT v.local_day,
       min(v.hour_start) AS first_hour_start,
       v.store_id,
       v.store_name,
       v.branch,
       v.timezone,
       {_daily_columns()}
FROM store_hourly_v v
GROUP BY v.local_day, v.store_id, v.store_name, v.branch, v.timezone
"""


def _reader_role() -> str | None:
    """The read-only role (``config.attributes["reader_role"]``, as in 0001) quoted, or None when absent."""
    role = context.config.attributes.get("reader_role", "moodstream_reader")
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        return None
    return str(bind.dialect.identifier_preparer.quote(role))


def upgrade() -> None:
    op.create_table(
        "privacy_settings",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("min_visits", sa.Integer(), server_default="0", nullable=False, comment=MIN_VISITS_COMMENT),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_privacy_settings"),
        sa.CheckConstraint("id", name="ck_privacy_settings_one_row"),
        sa.CheckConstraint(
            "min_visits >= 0 AND min_visits <= 1000000", name="ck_privacy_settings_min_visits_range"
        ),
        comment=SETTINGS_COMMENT,
    )
    op.execute("INSERT INTO privacy_settings (id, min_visits) VALUES (true, 0)")
    op.execute(CAMERA_ACTIVITY_V)
    op.execute(STORE_HOURLY_V)
    op.execute(STORE_DAILY_V)
    op.execute(STORE_HOURS)
    op.execute(f"REVOKE ALL ON FUNCTION {STORE_HOURS_SIGNATURE} FROM PUBLIC")
    reader = _reader_role()
    if reader is not None:
        for name in RAW_FOR_WRITER_ONLY:
            op.execute(f"REVOKE ALL ON {name} FROM {reader}")
        for name in READER_VIEWS:
            op.execute(f"GRANT SELECT ON {name} TO {reader}")
        op.execute(f"GRANT EXECUTE ON FUNCTION {STORE_HOURS_SIGNATURE} TO {reader}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {STORE_HOURS_SIGNATURE}")
    for view in reversed(READER_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_table("privacy_settings")
    reader = _reader_role()
    if reader is not None:
        for name in OLD_READER_OBJECTS:
            op.execute(f"GRANT SELECT ON {name} TO {reader}")
