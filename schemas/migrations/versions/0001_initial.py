"""Initial schema: stores, cameras, emotion_counts, frame_losses, applied_frames and the reporting views.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
READER_OBJECTS = ("stores", "cameras", "emotion_counts", "frame_losses", "emotion_counts_v", "branch_daily_v")

EMOTION_COUNTS_V = f"""
CREATE VIEW emotion_counts_v AS
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
       ec.faces,
       {", ".join(f"ec.{e}" for e in EMOTIONS)},
       (ec.happy - (ec.angry + ec.disgust + ec.fear + ec.sad))::float8
           / NULLIF(ec.faces, 0) AS satisfaction_index,
       ec.last_frame_at,
       ec.updated_at
FROM emotion_counts ec
LEFT JOIN stores s ON s.id = ec.store_id
LEFT JOIN cameras c ON c.store_id = ec.store_id AND c.id = ec.camera_id
"""

BRANCH_DAILY_V = f"""
CREATE VIEW branch_daily_v AS
SELECT s.branch,
       ec.store_id,
       s.name AS store_name,
       COALESCE(s.timezone, 'UTC') AS timezone,
       (ec.bucket_start AT TIME ZONE COALESCE(s.timezone, 'UTC'))::date AS day,
       SUM(ec.frames)::bigint AS frames,
       SUM(ec.faces)::bigint AS faces,
       {", ".join(f"SUM(ec.{e})::bigint AS {e}" for e in EMOTIONS)},
       (SUM(ec.happy) - SUM(ec.angry + ec.disgust + ec.fear + ec.sad))::float8
           / NULLIF(SUM(ec.faces), 0) AS satisfaction_index
FROM emotion_counts ec
LEFT JOIN stores s ON s.id = ec.store_id
GROUP BY s.branch, ec.store_id, s.name, COALESCE(s.timezone, 'UTC'),
         (ec.bucket_start AT TIME ZONE COALESCE(s.timezone, 'UTC'))::date
"""


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def _fact_key() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "bucket_start", sa.DateTime(timezone=True), nullable=False, comment="UTC start of the bucket"
        ),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
    ]


def _count(name: str, comment: str | None = None) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False, comment=comment)


def _create_dimensions() -> None:
    op.create_table(
        "stores",
        sa.Column("id", sa.Text(), nullable=False, comment="stable store id from stores.yaml"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("branch", sa.Text(), nullable=False, comment="per-branch reports group by this"),
        sa.Column("timezone", sa.Text(), nullable=False, comment="IANA time zone of the store"),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_stores"),
        comment="Stores of the camera registry; never deleted, disabled when removed from stores.yaml.",
    )
    op.create_table(
        "cameras",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "source_redacted", sa.Text(), nullable=False, comment="camera source with any password as ***"
        ),
        sa.Column("fps", sa.Float(), nullable=False, comment="frames sampled per second"),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("fps > 0", name="ck_cameras_fps_positive"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_cameras_store_id_stores"),
        sa.PrimaryKeyConstraint("store_id", "id", name="pk_cameras"),
        comment="Cameras of the registry; never deleted, disabled when removed from stores.yaml.",
    )


def _create_facts() -> None:
    counts = ("frames", "faces", *EMOTIONS)
    op.create_table(
        "emotion_counts",
        *_fact_key(),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False, comment="width of the bucket in seconds"),
        _count("frames", "frames analysed"),
        _count("faces", "faces classified"),
        *[_count(e) for e in EMOTIONS],
        sa.Column(
            "last_frame_at", sa.DateTime(timezone=True), nullable=True, comment="newest capture time counted"
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("bucket_seconds > 0", name="ck_emotion_counts_bucket_seconds_positive"),
        sa.CheckConstraint(
            " AND ".join(f"{c} >= 0" for c in counts), name="ck_emotion_counts_counts_not_negative"
        ),
        sa.PrimaryKeyConstraint("bucket_start", "store_id", "camera_id", name="pk_emotion_counts"),
        comment="Emotion counts per capture-time bucket and camera (aggregates only, no faces).",
    )
    op.create_index(
        "ix_emotion_counts_store_id_camera_id_bucket_start",
        "emotion_counts",
        ["store_id", "camera_id", "bucket_start"],
    )
    op.create_table(
        "frame_losses",
        *_fact_key(),
        _count("shed", "frames dropped by stream caps"),
        _count("dead", "frames sent to the dead stream"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("shed >= 0 AND dead >= 0", name="ck_frame_losses_losses_not_negative"),
        sa.PrimaryKeyConstraint("bucket_start", "store_id", "camera_id", name="pk_frame_losses"),
        comment="Frames lost per bucket and camera: shed by stream caps or sent to the dead stream.",
    )
    op.create_table(
        "applied_frames",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column("stream_epoch", sa.BigInteger(), nullable=False, comment="one ingest run of the camera"),
        sa.Column("seq", sa.BigInteger(), nullable=False, comment="frame sequence number within the epoch"),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "camera_id", "stream_epoch", "seq", name="pk_applied_frames"),
        comment="Internal: frames the aggregator already counted (idempotent redelivery).",
    )
    op.create_index("ix_applied_frames_applied_at", "applied_frames", ["applied_at"])


def _grant_reader() -> None:
    """GRANT SELECT on the public tables and views to the read-only role, when that role exists.

    The role name comes from ``config.attributes["reader_role"]`` (default ``moodstream_reader``);
    ``moodstream db create-reader`` creates the role and grants the same later if it did not exist yet.
    """
    role = context.config.attributes.get("reader_role", "moodstream_reader")
    exists = op.get_bind().execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    if not exists:
        return
    quoted = op.get_bind().dialect.identifier_preparer.quote(role)
    for name in READER_OBJECTS:
        op.execute(f"GRANT SELECT ON {name} TO {quoted}")


def upgrade() -> None:
    _create_dimensions()
    _create_facts()
    op.execute(EMOTION_COUNTS_V)
    op.execute(BRANCH_DAILY_V)
    _grant_reader()


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS branch_daily_v")
    op.execute("DROP VIEW IF EXISTS emotion_counts_v")
    for table in ("applied_frames", "frame_losses", "emotion_counts", "cameras", "stores"):
        op.drop_table(table)
