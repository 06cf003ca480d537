"""deploy/postgres/roles.sql run with psql on a real server: writer migrates, reader only reads."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from moodstream.runtime.database import create_database_engine, migrate, parse_database_url
from moodstream.runtime.embedded import postgres_bin_dir

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql"


@pytest.fixture
def names(admin_database_url: str) -> Iterator[dict[str, str]]:
    """Unique database / writer / reader names; everything dropped after the test."""
    tag = uuid.uuid4().hex[:10]
    created = {"dbname": f"ms_roles_{tag}", "writer": f"ms_writer_{tag}", "reader": f"ms_reader_{tag}"}
    yield created
    admin = create_engine(parse_database_url(admin_database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{created["dbname"]}" WITH (FORCE)'))
        for role in (created["reader"], created["writer"]):
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def _psql(admin_url: str, variables: dict[str, str], env: dict[str, str] | None = None) -> None:
    libpq_url = (
        parse_database_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    args = [str(postgres_bin_dir() / "psql"), libpq_url, "-q", "-f", str(ROLES_SQL)]
    for key, value in variables.items():
        args += ["-v", f"{key}={value}"]
    environ = {**os.environ, **(env or {})}
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=120, env=environ)


def test_roles_sql_then_upgrade_gives_a_read_only_reader(
    admin_database_url: str, names: dict[str, str]
) -> None:
    variables = {**names, "writer_password": "Writer-pw-1", "reader_password": "Reader-pw-1"}
    _psql(admin_database_url, variables)
    _psql(admin_database_url, variables)  # running it again is harmless
    base = parse_database_url(admin_database_url).set(database=names["dbname"])

    writer = create_database_engine(
        base.set(username=names["writer"], password="Writer-pw-1").render_as_string(False)
    )
    migrate(writer, reader_role=names["reader"])
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO stores (id, name, branch, timezone) VALUES ('s', 'S', 'b', 'UTC')"))
    writer.dispose()

    reader = create_engine(base.set(username=names["reader"], password="Reader-pw-1"))
    with reader.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stores")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM store_daily_v")).scalar() == 0
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "30s"
        limit = conn.execute(text("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user"))
        assert limit.scalar() == 20
    for statement in (
        "INSERT INTO frame_losses (bucket_start, store_id, camera_id) VALUES (now(), 's', 'c')",
        "UPDATE stores SET name = 'x'",
        "DELETE FROM stores",
        "CREATE TABLE public.sneaky (x int)",
        "SELECT * FROM applied_frames",
        "SELECT * FROM emotion_counts",
        "SELECT * FROM zone_visits",
        "SELECT * FROM branch_daily_v",
    ):
        with reader.connect() as conn, pytest.raises(ProgrammingError):
            conn.execute(text(statement))
    reader.dispose()


def test_roles_sql_reads_the_passwords_from_the_environment(
    admin_database_url: str, names: dict[str, str]
) -> None:
    env = {"MOODSTREAM_WRITER_PASSWORD": "Writer-env-2", "MOODSTREAM_READER_PASSWORD": "Reader-env-2"}
    _psql(admin_database_url, names, env)  # what deploy/postgres/initdb.sh does: no password in argv
    base = parse_database_url(admin_database_url).set(database=names["dbname"])
    writer = create_database_engine(
        base.set(username=names["writer"], password="Writer-env-2").render_as_string(False)
    )
    migrate(writer, reader_role=names["reader"])
    writer.dispose()
    reader = create_engine(base.set(username=names["reader"], password="Reader-env-2"))
    with reader.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM store_hourly_v")).scalar() == 0
    reader.dispose()
