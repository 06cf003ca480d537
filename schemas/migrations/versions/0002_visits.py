"""Visits: emotion_counts gains visits, readable visits, visits per emotion, dwell (sum and histogram) and
readable faces; the face emotion columns become faces_<emotion>; the views show visits first.

Rows counted before this revision keep their frames and face counts (``faces`` was every face, all of
them classified, so the renamed ``faces_<emotion>`` columns keep their meaning); their visit columns and
``readable_faces`` are 0 (there was no tracker and no quality gate then).

Revision ID: 0002_visits
Revises: 0001_initial
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from alembic.script import ScriptDirectory

revision = "0002_visits"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# Frozen copies of the contract at this revision (a migration must not change when tables.py does).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEGATIVE = ("angry", "disgust", "fear", "sad")
DWELL_BINS = (
    ("dwell_lt_10s", "visits shorter than 10 s"),
    ("dwell_10_30s", "visits that lasted 10 s to under 30 s"),
    ("dwell_30_120s", "visits that lasted 30 s to under 120 s"),
    ("dwell_120_600s", "visits that lasted 120 s to under 600 s"),
    ("dwell_ge_600s", "visits that lasted 600 s or more"),
)
VISIT_COLUMNS = (
    (
        "visits",
        "visits that started in this bucket (one person seen by one camera, from appearing to leaving)",
    ),
    ("readable_visits", "visits with at least one readable face (only those have an emotion)"),
    *((f"visits_{e}", f"readable visits whose emotion is {e}") for e in EMOTIONS),
    *DWELL_BINS,
    ("readable_faces", "faces that passed the quality gate"),
)
DWELL_SUM_COMMENT = "sum of the dwell times (first to last sighting) of the visits, seconds"
COUNTERS = (
    "frames",
    *(name for name, _ in VISIT_COLUMNS),
    "faces",
    *(f"faces_{e}" for e in EMOTIONS),
)
CHECK_NAME = "ck_emotion_counts_counts_not_negative"
TABLE_COMMENT = (
    "Visits, dwell and emotion counts per capture-time bucket and camera (aggregates only: no face image, "
    "no per-person row, no track id)."
)
OLD_TABLE_COMMENT = "Emotion counts per capture-time bucket and camera (aggregates only, no faces)."
VIEWS = ("emotion_counts_v", "branch_daily_v")


def _index(numerator: dict[str, str], denominator: str) -> str:
    """SQL of (happy - (angry + disgust + fear + sad)) / denominator, NULL when the denominator is 0."""
    negative = " + ".join(numerator[e] for e in NEGATIVE)
    return f"({numerator['happy']} - ({negative}))::float8 / NULLIF({denominator}, 0)"


def _measures(total: bool) -> str:
    """The view columns after ``frames``: visits first, then dwell, then faces (summed when ``total``)."""

    def col(name: str) -> str:
        return f"SUM(ec.{name})" if total else f"ec.{name}"

    def out(name: str) -> str:
        return f"SUM(ec.{name})::bigint AS {name}" if total else f"ec.{name}"

    visit_emotions = {e: col(f"visits_{e}") for e in EMOTIONS}
    face_emotions = {e: col(f"faces_{e}") for e in EMOTIONS}
    classified = "(" + " + ".join(face_emotions.values()) + ")"
    dwell_sum = col("dwell_seconds_sum")
    parts = [
        out("frames"),
        out("visits"),
        out("readable_visits"),
        *(out(f"visits_{e}") for e in EMOTIONS),
        f"{_index(visit_emotions, col('readable_visits'))} AS visit_satisfaction_index",
        f"{dwell_sum}::float8 AS dwell_seconds_sum",
        f"{dwell_sum}::float8 / NULLIF({col('visits')}, 0) AS dwell_seconds_mean",
        *(out(name) for name, _ in DWELL_BINS),
        out("faces"),
        out("readable_faces"),
        f"{classified}::bigint AS classified_faces",
        *(out(f"faces_{e}") for e in EMOTIONS),
        f"{_index(face_emotions, classified)} AS face_satisfaction_index",
    ]
    return ",\n       ".join(parts)


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
       {_measures(total=False)},
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
       {_measures(total=True)}
FROM emotion_counts ec
LEFT JOIN stores s ON s.id = ec.store_id
GROUP BY s.branch, ec.store_id, s.name, COALESCE(s.timezone, 'UTC'),
         (ec.bucket_start AT TIME ZONE COALESCE(s.timezone, 'UTC'))::date
"""


def _drop_views() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")


def _grant_views() -> None:
    """Re-grant SELECT on the recreated views to the read-only role, when it exists (a dropped view loses
    its grants; the role name as in 0001: ``config.attributes["reader_role"]``)."""
    role = context.config.attributes.get("reader_role", "moodstream_reader")
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        return
    quoted = bind.dialect.identifier_preparer.quote(role)
    for view in VIEWS:
        op.execute(f"GRANT SELECT ON {view} TO {quoted}")


def _check(counters: tuple[str, ...]) -> str:
    return " AND ".join(f"{c} >= 0" for c in counters)


def upgrade() -> None:
    _drop_views()
    op.drop_constraint(CHECK_NAME, "emotion_counts", type_="check")
    for emotion in EMOTIONS:
        op.alter_column("emotion_counts", emotion, new_column_name=f"faces_{emotion}")
        op.alter_column(
            "emotion_counts",
            f"faces_{emotion}",
            existing_type=sa.Integer(),
            existing_nullable=False,
            comment=f"classified faces (votes) whose emotion is {emotion}",
        )
    op.alter_column(
        "emotion_counts",
        "faces",
        existing_type=sa.Integer(),
        existing_nullable=False,
        comment="faces detected",
        existing_comment="faces classified",
    )
    for name, comment in VISIT_COLUMNS:
        op.add_column(
            "emotion_counts",
            sa.Column(name, sa.Integer(), server_default="0", nullable=False, comment=comment),
        )
    op.add_column(
        "emotion_counts",
        sa.Column(
            "dwell_seconds_sum", sa.Float(), server_default="0", nullable=False, comment=DWELL_SUM_COMMENT
        ),
    )
    op.create_check_constraint(CHECK_NAME, "emotion_counts", _check((*COUNTERS, "dwell_seconds_sum")))
    op.create_table_comment("emotion_counts", TABLE_COMMENT, existing_comment=OLD_TABLE_COMMENT)
    op.execute(EMOTION_COUNTS_V)
    op.execute(BRANCH_DAILY_V)
    _grant_views()


def downgrade() -> None:
    _drop_views()
    op.drop_constraint(CHECK_NAME, "emotion_counts", type_="check")
    op.drop_column("emotion_counts", "dwell_seconds_sum")
    for name, _ in reversed(VISIT_COLUMNS):
        op.drop_column("emotion_counts", name)
    for emotion in EMOTIONS:
        op.alter_column("emotion_counts", f"faces_{emotion}", new_column_name=emotion)
        op.alter_column(
            "emotion_counts", emotion, existing_type=sa.Integer(), existing_nullable=False, comment=None
        )
    op.alter_column(
        "emotion_counts",
        "faces",
        existing_type=sa.Integer(),
        existing_nullable=False,
        comment="faces classified",
        existing_comment="faces detected",
    )
    op.create_check_constraint(CHECK_NAME, "emotion_counts", _check(("frames", "faces", *EMOTIONS)))
    op.create_table_comment("emotion_counts", OLD_TABLE_COMMENT, existing_comment=TABLE_COMMENT)
    previous = ScriptDirectory.from_config(context.config).get_revision("0001_initial")
    if previous is None:
        raise RuntimeError("revision 0001_initial is missing from the migrations folder")
    op.execute(previous.module.EMOTION_COUNTS_V)
    op.execute(previous.module.BRANCH_DAILY_V)
    _grant_views()
