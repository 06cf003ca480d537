"""Zones: the table zone_visits counts visits per bucket, camera and zone (stores.yaml cameras[].zones).

A visit belongs to the zone that held its face centre in most of its frames; visits in no zone are only
counted in emotion_counts, as before. Nothing already counted changes.

Like ``emotion_counts`` (0003), the table holds unsuppressed emotion counts, so it is the writer's only
(``moodstream report --zone``): the read-only role gets no grant on it; views and functions of 0003/0004
read ``emotion_counts`` alone and are unchanged.

Revision ID: 0005_zones_visits
Revises: 0004_hours_schedule
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_zones_visits"
down_revision = "0004_hours_schedule"
branch_labels = None
depends_on = None

# Frozen copies of the contract at this revision (a migration must not change when tables.py does).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VISIT_COLUMNS = (
    (
        "visits",
        "visits that started in this bucket (one person seen by one camera, from appearing to leaving)",
    ),
    ("readable_visits", "visits with at least one readable face (only those have an emotion)"),
    *((f"visits_{e}", f"readable visits whose emotion is {e}") for e in EMOTIONS),
)
DWELL_BINS = (
    ("dwell_lt_10s", "visits shorter than 10 s"),
    ("dwell_10_30s", "visits that lasted 10 s to under 30 s"),
    ("dwell_30_120s", "visits that lasted 30 s to under 120 s"),
    ("dwell_120_600s", "visits that lasted 120 s to under 600 s"),
    ("dwell_ge_600s", "visits that lasted 600 s or more"),
)
DWELL_SUM_COMMENT = "sum of the dwell times (first to last sighting) of the visits, seconds"
TABLE_COMMENT = (
    "Visits per capture-time bucket, camera and zone: a visit counts in the zone that held its face in most "
    "of its frames; visits in no zone are only in emotion_counts (aggregates only)."
)


def _count(name: str, comment: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False, comment=comment)


def upgrade() -> None:
    counters = (*(n for n, _ in VISIT_COLUMNS), *(n for n, _ in DWELL_BINS))
    op.create_table(
        "zone_visits",
        sa.Column(
            "bucket_start", sa.DateTime(timezone=True), nullable=False, comment="UTC start of the bucket"
        ),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.Text(), nullable=False),
        sa.Column(
            "zone", sa.Text(), nullable=False, comment="zone id of the camera (stores.yaml cameras[].zones)"
        ),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False, comment="width of the bucket in seconds"),
        *(_count(n, c) for n, c in VISIT_COLUMNS),
        sa.Column(
            "dwell_seconds_sum", sa.Float(), server_default="0", nullable=False, comment=DWELL_SUM_COMMENT
        ),
        *(_count(n, c) for n, c in DWELL_BINS),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("bucket_start", "store_id", "camera_id", "zone", name="pk_zone_visits"),
        sa.CheckConstraint("bucket_seconds > 0", name="ck_zone_visits_bucket_seconds_positive"),
        sa.CheckConstraint(
            " AND ".join(f"{c} >= 0" for c in (*counters, "dwell_seconds_sum")),
            name="ck_zone_visits_counts_not_negative",
        ),
        comment=TABLE_COMMENT,
    )
    op.create_index(
        "ix_zone_visits_store_id_camera_id_zone_bucket_start",
        "zone_visits",
        ["store_id", "camera_id", "zone", "bucket_start"],
    )


def downgrade() -> None:
    op.drop_table("zone_visits")
