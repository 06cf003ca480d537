"""The read-only Grafana role: SELECT on the public tables and views, nothing else (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from moodstream.runtime.database import (
    create_database_engine,
    create_reader_role,
    migrate,
    parse_database_url,
)
from moodstream.schemas import tables
from tests.integration.helpers import drop_role, refused


@pytest.fixture
def writer(migrated_database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reader(writer: Engine, migrated_database_url: str) -> Iterator[Engine]:
    """An engine logged in as a freshly created read-only role (unique name, dropped after)."""
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    assert create_reader_role(writer, role, password="pw-for-test") is True
    url = parse_database_url(migrated_database_url).set(username=role, password="pw-for-test")
    engine = create_engine(url)
    yield engine
    engine.dispose()
    drop_role(writer, role)


@pytest.mark.parametrize("name", [*tables.PUBLIC_TABLES, *tables.PUBLIC_VIEWS])
def test_reader_can_select_public_tables_and_views(reader: Engine, name: str) -> None:
    with reader.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() == 0


FORBIDDEN = {
    "insert": "INSERT INTO stores (id, name, branch, timezone) VALUES ('x', 'x', 'x', 'UTC')",
    "update": "UPDATE emotion_counts SET faces = 1",
    "delete": "DELETE FROM cameras",
    "create table": "CREATE TABLE public.reader_made (x int)",
    "create schema": "CREATE SCHEMA reader_schema",
    "read applied_frames": "SELECT * FROM applied_frames",
    "read alembic_version": "SELECT * FROM alembic_version",
    "read the raw counts": "SELECT * FROM emotion_counts",
    "read the unsuppressed view": "SELECT * FROM emotion_counts_v",
    "read the raw zone counts": "SELECT * FROM zone_visits",
    "truncate": "TRUNCATE frame_losses",
}


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_reader_cannot_write_create_or_read_internal_tables(reader: Engine, statement: str) -> None:
    assert isinstance(refused(reader, statement, ProgrammingError), psycopg.errors.InsufficientPrivilege)


def test_create_reader_role_twice_updates_and_keeps_grants(
    writer: Engine, migrated_database_url: str
) -> None:
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    try:
        assert create_reader_role(writer, role, password="one") is True
        tricky = "p%(x)s :y'\\ $$"  # bind-parameter, quote and dollar syntax must reach the server verbatim
        assert create_reader_role(writer, role, password=tricky) is False
        with writer.connect() as conn:
            stored = conn.execute(text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"), {"r": role})
            assert str(stored.scalar()).startswith("SCRAM-SHA-256$")
        url = parse_database_url(migrated_database_url).set(username=role, password=tricky)
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM store_daily_v")).scalar() == 0
        engine.dispose()
    finally:
        drop_role(writer, role)


def test_migration_grants_an_existing_reader_role(database_url: str) -> None:
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    engine = create_database_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'pw-for-test'"))
    try:
        migrate(engine, reader_role=role)
        reader = create_engine(parse_database_url(database_url).set(username=role, password="pw-for-test"))
        with reader.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM store_hourly_v")).scalar() == 0
        # 0001 granted emotion_counts and emotion_counts_v; zone_visits (0005) holds raw counts per zone
        for internal in ("applied_frames", "emotion_counts", "emotion_counts_v", "zone_visits"):
            with reader.connect() as conn, pytest.raises(ProgrammingError):
                conn.execute(text(f"SELECT * FROM {internal}"))
        reader.dispose()
    finally:
        drop_role(engine, role)
        engine.dispose()
