"""`moodstream db upgrade` (migrate) on real PostgreSQL servers: schema, idempotence, views, no drift."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, insert, inspect, select, text

from moodstream.runtime.database import (
    MIGRATIONS_LOCATION,
    create_database_engine,
    create_reader_role,
    current_revision,
    migrate,
    parse_database_url,
)
from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS, satisfaction_index
from tests.integration.helpers import drop_role

HEAD = "0005_zones_visits"


def test_upgrade_creates_every_table_and_view(engine: Engine) -> None:
    inspector = inspect(engine)
    assert set(tables.metadata.tables) <= set(inspector.get_table_names())
    assert set(tables.PUBLIC_VIEWS) <= set(inspector.get_view_names())
    assert current_revision(engine) == HEAD


def test_upgrade_twice_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(tables.stores).values(id="s1", name="S1", branch="b", timezone="UTC"))
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(tables.stores.c.id)).scalars().all() == ["s1"]
    assert current_revision(engine) == HEAD


def test_migrated_schema_matches_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []


def _row(bucket: datetime, **counts: float) -> dict[str, object]:
    return {"bucket_start": bucket, "store_id": "hn", "camera_id": "c1", "bucket_seconds": 60, **counts}


def test_views_show_visits_first_and_satisfaction_in_store_timezone(engine: Engine) -> None:
    visits = dict(zip(EMOTIONS, (1, 0, 0, 4, 1, 0, 2), strict=True))  # 8 readable visits
    faces = dict(zip(EMOTIONS, (1, 0, 2, 6, 1, 3, 7), strict=True))  # 20 classified faces
    # 17:30 UTC is 00:30 of the next day in Ho Chi Minh City (UTC+7)
    bucket = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(tables.stores).values(id="hn", name="Hanoi 1", branch="hanoi", timezone="Asia/Ho_Chi_Minh")
        )
        conn.execute(
            insert(tables.emotion_counts).values(
                _row(bucket, frames=5, visits=10, readable_visits=8, dwell_seconds_sum=95.0, dwell_lt_10s=9)
                | {f"visits_{e}": n for e, n in visits.items()}
                | {"dwell_ge_600s": 1, "faces": 30, "readable_faces": 24}
                | {f"faces_{e}": n for e, n in faces.items()}
            )
        )
        # an hour later: 3 visits, none readable (faces too small), 12 faces detected, none classified
        later = _row(bucket.replace(hour=18), frames=3, visits=3, dwell_seconds_sum=6.0, dwell_lt_10s=3)
        conn.execute(insert(tables.emotion_counts).values(later | {"faces": 12}))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM emotion_counts_v ORDER BY bucket_start")).mappings().all()
        daily = conn.execute(text("SELECT * FROM branch_daily_v")).mappings().all()
    first, unreadable = rows
    assert first["visit_satisfaction_index"] == pytest.approx((4 - 2) / 8)
    assert first["face_satisfaction_index"] == pytest.approx(satisfaction_index(faces))
    assert first["classified_faces"] == 20 and first["dwell_seconds_mean"] == pytest.approx(9.5)
    assert first["branch"] == "hanoi" and first["store_name"] == "Hanoi 1"
    # every visit unreadable: no index (NULL), never a negative one
    assert unreadable["visits"] == 3 and unreadable["readable_visits"] == 0
    assert unreadable["visit_satisfaction_index"] is None
    assert unreadable["face_satisfaction_index"] is None
    (day,) = daily
    assert str(day["day"]) == "2026-03-02"
    assert (day["frames"], day["visits"], day["readable_visits"], day["faces"]) == (8, 13, 8, 42)
    assert day["visit_satisfaction_index"] == pytest.approx(0.25)
    assert day["dwell_seconds_mean"] == pytest.approx(101 / 13) and day["dwell_lt_10s"] == 12
    assert day["face_satisfaction_index"] == pytest.approx(satisfaction_index(faces))
    columns = list(rows[0].keys())
    assert columns.index("visits") < columns.index("visit_satisfaction_index") < columns.index("faces")


def _alembic(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.attributes["connection"] = conn
    return config


def _face_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("emotion_counts")}


def test_downgrade_to_the_initial_schema_and_back(engine: Engine) -> None:
    bucket = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(tables.emotion_counts).values(_row(bucket, frames=2, faces=3, faces_happy=3, visits=1))
        )
    with engine.connect() as conn:
        command.downgrade(_alembic(conn), "0001_initial")
        conn.commit()
    assert current_revision(engine) == "0001_initial"
    columns = _face_columns(engine)
    assert {"happy", "faces", "frames"} <= columns and not {"visits", "faces_happy", "dwell_lt_10s"} & columns
    with engine.connect() as conn:
        old = conn.execute(text("SELECT faces, happy, satisfaction_index FROM emotion_counts_v")).one()
    assert tuple(old) == (3, 3, 1.0)  # the face counts survive the round trip
    migrate(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(text("SELECT faces_happy, visits FROM emotion_counts_v")).one() == (3, 0)
        assert (
            compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), tables.metadata)
            == []
        )


def test_upgrade_from_the_initial_revision_keeps_counts_and_reader_grants(database_url: str) -> None:
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    engine = create_database_engine(database_url)
    try:
        migrate(engine, revision="0001_initial")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, frames,"
                    " faces, happy, sad) VALUES ('2026-03-01T10:00Z', 's', 'c', 60, 4, 3, 2, 1)"
                )
            )
        assert create_reader_role(engine, role, password="pw-for-test") is True
        migrate(engine, reader_role=role)
        reader = create_engine(parse_database_url(database_url).set(username=role, password="pw-for-test"))
        with reader.connect() as conn:
            row = conn.execute(text("SELECT * FROM emotion_counts_v")).mappings().one()
            assert conn.execute(text("SELECT count(*) FROM branch_daily_v")).scalar() == 1
        reader.dispose()
        assert (row["frames"], row["faces"], row["faces_happy"], row["faces_sad"]) == (4, 3, 2, 1)
        assert (row["visits"], row["readable_faces"], row["visit_satisfaction_index"]) == (0, 0, None)
        assert row["face_satisfaction_index"] == pytest.approx(1 / 3)
    finally:
        drop_role(engine, role)
        engine.dispose()
