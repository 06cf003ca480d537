"""`moodstream db upgrade` (migrate) on real PostgreSQL servers: schema, idempotence, views, no drift."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text

from moodstream.runtime.database import current_revision, migrate
from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS, satisfaction_index


def test_upgrade_creates_every_table_and_view(engine: Engine) -> None:
    inspector = inspect(engine)
    assert set(tables.metadata.tables) <= set(inspector.get_table_names())
    assert set(tables.PUBLIC_VIEWS) <= set(inspector.get_view_names())
    assert current_revision(engine) == "0001_initial"


def test_upgrade_twice_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(tables.stores).values(id="s1", name="S1", branch="b", timezone="UTC"))
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(tables.stores.c.id)).scalars().all() == ["s1"]
    assert current_revision(engine) == "0001_initial"


def test_migrated_schema_matches_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []


def test_views_compute_satisfaction_in_store_timezone(engine: Engine) -> None:
    counts = dict(zip(EMOTIONS, (1, 0, 2, 6, 1, 3, 7), strict=True))
    faces = sum(counts.values())
    # 17:30 UTC is 00:30 of the next day in Ho Chi Minh City (UTC+7)
    bucket = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(tables.stores).values(id="hn", name="Hanoi 1", branch="hanoi", timezone="Asia/Ho_Chi_Minh")
        )
        conn.execute(
            insert(tables.emotion_counts).values(
                bucket_start=bucket,
                store_id="hn",
                camera_id="c1",
                bucket_seconds=60,
                frames=5,
                faces=faces,
                **counts,
            )
        )
        conn.execute(
            insert(tables.emotion_counts).values(
                bucket_start=bucket.replace(hour=18),
                store_id="hn",
                camera_id="c1",
                bucket_seconds=60,
                frames=3,
            )
        )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM emotion_counts_v ORDER BY bucket_start")).mappings().all()
        daily = conn.execute(text("SELECT * FROM branch_daily_v")).mappings().all()
    assert rows[0]["satisfaction_index"] == pytest.approx(satisfaction_index(counts))
    assert rows[0]["branch"] == "hanoi" and rows[0]["store_name"] == "Hanoi 1"
    assert rows[1]["satisfaction_index"] is None  # no faces: no index, not zero
    assert len(daily) == 1
    assert str(daily[0]["day"]) == "2026-03-02"
    assert daily[0]["frames"] == 8 and daily[0]["faces"] == faces
    assert daily[0]["satisfaction_index"] == pytest.approx(satisfaction_index(counts))
