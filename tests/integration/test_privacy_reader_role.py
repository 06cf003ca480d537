"""Least privilege of the read-only Grafana role, beyond tests/integration/test_reader_role.py.

That file proves SELECT on the public tables/views and that INSERT, UPDATE, DELETE, TRUNCATE, CREATE
TABLE/SCHEMA and reading applied_frames/alembic_version fail. Here: the catalog says the role holds
SELECT on exactly the public relations and no other privilege on any relation of the schema (so a
table added later without thought is caught), and the side doors are closed too (row locks, table
locks, COPY, DDL on existing objects, server files, role switching, functions).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from moodstream.runtime.database import create_database_engine, create_reader_role, parse_database_url
from moodstream.schemas import tables
from tests.integration.helpers import drop_role, refused

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.fixture
def writer(migrated_database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reader_role(writer: Engine) -> Iterator[str]:
    """A reader role made by ``create_reader_role`` (unique name, dropped after)."""
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    create_reader_role(writer, role, password="pw-for-test")
    yield role
    drop_role(writer, role)


@pytest.fixture
def reader(reader_role: str, migrated_database_url: str) -> Iterator[Engine]:
    url = parse_database_url(migrated_database_url).set(username=reader_role, password="pw-for-test")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_catalog_grants_exactly_select_on_the_public_relations(writer: Engine, reader_role: str) -> None:
    public = set(tables.PUBLIC_TABLES) | set(tables.PUBLIC_VIEWS)
    with writer.connect() as conn:
        relations = [
            str(r[0])
            for r in conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')"
                )
            )
        ]
        assert public <= set(relations)
        held = {
            (name, privilege)
            for name in relations
            for privilege in PRIVILEGES
            if conn.execute(
                text("SELECT has_table_privilege(:role, CAST(:rel AS regclass), :priv)"),
                {"role": reader_role, "rel": f'public."{name}"', "priv": privilege},
            ).scalar_one()
        }
        schema_create = conn.execute(
            text("SELECT has_schema_privilege(:role, 'public', 'CREATE')"), {"role": reader_role}
        ).scalar_one()
    assert held == {(name, "SELECT") for name in public}
    assert schema_create is False


SIDE_DOORS = {
    "row lock (SELECT ... FOR UPDATE)": "SELECT * FROM emotion_counts FOR UPDATE",
    "table lock": "LOCK TABLE emotion_counts IN EXCLUSIVE MODE",
    "COPY into a table": "COPY stores (id, name, branch, timezone) FROM PROGRAM 'echo'",
    "ALTER TABLE": "ALTER TABLE stores ADD COLUMN x int",
    "DROP VIEW": "DROP VIEW branch_daily_v",
    "read a server file": "SELECT pg_read_file('/etc/hostname')",
    "write a server file": "COPY (SELECT 1) TO '/tmp/moodstream-reader-test'",
    "become the superuser": "SET ROLE postgres",
    "CREATE FUNCTION in public": "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE VIEW over applied_frames": "CREATE VIEW public.peek AS SELECT * FROM applied_frames",
}


@pytest.mark.parametrize("statement", SIDE_DOORS.values(), ids=SIDE_DOORS.keys())
def test_reader_side_doors_are_closed(reader: Engine, statement: str) -> None:
    orig = refused(reader, statement, DBAPIError)
    assert isinstance(orig, psycopg.errors.InsufficientPrivilege | psycopg.errors.UndefinedObject)
