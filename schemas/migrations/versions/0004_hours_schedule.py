"""Opening hours: the ``opening_hours`` table (written by the registry sync), the SQL function
``store_is_open(store_id, at)`` and the view ``camera_status_v`` that the Grafana alerts read.

``store_is_open`` gives the same answer as ``OpeningHours.is_open`` in Python: the store's local time
(``stores.timezone``) falls in one of the ranges of its local date's exception, or, without an exception
that day, of its weekday; a store without rows is always open. It runs with its owner's rights (SECURITY
DEFINER, fixed search_path) and returns only a boolean, so the read-only role may call it whatever tables
it can read.

Revision ID: 0004_hours_schedule
Revises: 0003_policy_suppression
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0004_hours_schedule"
down_revision = "0003_policy_suppression"
branch_labels = None
depends_on = None

TABLE_COMMENT = (
    "Opening hours of the stores that have them (stores.yaml hours), in each store's local time: one row per "
    "range of a weekday or of an exception date, or one row with NULL times for a closed day. A store "
    "without rows is always open. store_is_open(store_id, at) answers from them."
)

STORE_IS_OPEN = """
CREATE FUNCTION store_is_open(p_store_id text, p_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH local AS (
    SELECT p_at AT TIME ZONE COALESCE((SELECT s.timezone FROM stores s WHERE s.id = p_store_id), 'UTC') AS t
  ), exception_day AS (
    SELECT h.opens, h.closes FROM opening_hours h, local
     WHERE h.store_id = p_store_id AND h.day = local.t::date
  ), usual_day AS (
    SELECT h.opens, h.closes FROM opening_hours h, local
     WHERE h.store_id = p_store_id AND h.weekday = EXTRACT(ISODOW FROM local.t)
       AND NOT EXISTS (SELECT 1 FROM exception_day)
  )
  SELECT NOT EXISTS (SELECT 1 FROM opening_hours h WHERE h.store_id = p_store_id)
      OR EXISTS (
           SELECT 1 FROM (SELECT * FROM exception_day UNION ALL SELECT * FROM usual_day) r, local
            WHERE local.t::time >= r.opens AND local.t::time < r.closes)
$$
"""

CAMERA_ACTIVITY_V = """
CREATE VIEW camera_status_v AS
SELECT c.store_id,
       s.name AS store_name,
       s.branch,
       s.timezone,
       c.id AS camera_id,
       c.name AS camera_name,
       newest.last_frame_at,
       newest.updated_at AS last_commit_at,
       EXTRACT(EPOCH FROM now() - COALESCE(newest.updated_at, c.created_at))::float8 AS silent_seconds,
       EXTRACT(EPOCH FROM newest.updated_at - newest.last_frame_at)::float8 AS commit_lag_seconds,
       store_is_open(c.store_id, now()) AS open_now
FROM cameras c
JOIN stores s ON s.id = c.store_id
LEFT JOIN LATERAL (
    SELECT ec.last_frame_at, ec.updated_at
      FROM emotion_counts ec
     WHERE ec.store_id = c.store_id AND ec.camera_id = c.id
     ORDER BY ec.bucket_start DESC
     LIMIT 1
) newest ON true
WHERE c.enabled AND s.enabled
"""


def _grant_reader() -> None:
    """SELECT on the new table and view for the read-only role, when it exists (as in 0001)."""
    role = context.config.attributes.get("reader_role", "moodstream_reader")
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        return
    quoted = bind.dialect.identifier_preparer.quote(role)
    for name in ("opening_hours", "camera_status_v"):
        op.execute(f"GRANT SELECT ON {name} TO {quoted}")


def upgrade() -> None:
    op.create_table(
        "opening_hours",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "weekday",
            sa.SmallInteger(),
            nullable=True,
            comment="ISO weekday (1 Monday ... 7 Sunday) of the week",
        ),
        sa.Column("day", sa.Date(), nullable=True, comment="local date of an exception to the week"),
        sa.Column("opens", sa.Time(), nullable=True, comment="local opening time; NULL: closed all that day"),
        sa.Column(
            "closes", sa.Time(), nullable=True, comment="local closing time (24:00:00: the end of the day)"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_opening_hours"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_opening_hours_store_id_stores"),
        sa.CheckConstraint("(weekday IS NULL) <> (day IS NULL)", name="ck_opening_hours_weekday_or_day"),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name="ck_opening_hours_iso_weekday"),
        sa.CheckConstraint(
            "(opens IS NULL) = (closes IS NULL) AND (opens IS NULL OR opens < closes)",
            name="ck_opening_hours_range",
        ),
        comment=TABLE_COMMENT,
    )
    op.create_index("ix_opening_hours_store_id", "opening_hours", ["store_id"])
    op.execute(STORE_IS_OPEN)
    op.execute(CAMERA_ACTIVITY_V)
    _grant_reader()


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS camera_status_v")
    op.execute("DROP FUNCTION IF EXISTS store_is_open(text, timestamptz)")
    op.drop_index("ix_opening_hours_store_id", table_name="opening_hours")
    op.drop_table("opening_hours")
