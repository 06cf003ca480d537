"""Server fixtures of the integration tests: real Redis and PostgreSQL, never mocks.

Every server fixture is parametrised over the embedded servers (started once per test session under a
temporary directory) and, when set, the external servers named by ``MOODSTREAM_TEST_REDIS_URL`` /
``MOODSTREAM_TEST_DATABASE_URL`` (``scripts/test`` sets them when the system servers answer).

* ``redis_url``: URL of a Redis server.
* ``redis_prefix``: a unique key prefix ending in ``:``; every key under it is deleted after the test.
* ``database_url``: URL of a fresh, empty PostgreSQL database, dropped after the test.
* ``migrated_database_url``: the same with ``moodstream db upgrade`` applied.
* ``admin_database_url``: URL of the server's administrative database (for roles and the like).
* ``server_dir``: an empty directory for a test that starts its own embedded servers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from moodstream.runtime.database import create_database_engine, migrate, parse_database_url
from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


EXTERNAL_REDIS_URL = os.environ.get("MOODSTREAM_TEST_REDIS_URL", "").strip()
EXTERNAL_DATABASE_URL = os.environ.get("MOODSTREAM_TEST_DATABASE_URL", "").strip()
SERVER_KINDS_REDIS = ["embedded", *(["external"] if EXTERNAL_REDIS_URL else [])]
SERVER_KINDS_DATABASE = ["embedded", *(["external"] if EXTERNAL_DATABASE_URL else [])]


def make_server_dir() -> Path:
    """A new directory for embedded servers, outside pytest's basetemp (which pytest empties whenever a
    pytest session starts, servers or not)."""
    return Path(tempfile.mkdtemp(prefix="moodstream-test-"))


def remove_server_dir(path: Path) -> None:
    """Delete a directory of embedded servers, with the PostgreSQL clusters of the data directories in it
    (run as root, a cluster lives under ROOT_CLUSTERS_DIR with a link in its data directory)."""
    for link in [path / "postgres", *path.glob("*/postgres")]:
        EmbeddedPostgres(link.parent).delete_cluster()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_dir() -> Iterator[Path]:
    """Data directory of the session's embedded servers (removed at the end of the session)."""
    path = make_server_dir()
    yield path
    remove_server_dir(path)


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A directory of its own for a test that starts embedded servers itself (removed after)."""
    path = make_server_dir()
    yield path
    remove_server_dir(path)


@pytest.fixture(scope="session")
def embedded_redis_url(embedded_dir: Path) -> Iterator[str]:
    """The session's embedded Redis (started on first use, stopped at the end of the session)."""
    server = EmbeddedRedis(embedded_dir)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def embedded_postgres_url(embedded_dir: Path) -> Iterator[str]:
    """Admin URL of the session's embedded PostgreSQL (started on first use, stopped at session end)."""
    server = EmbeddedPostgres(embedded_dir)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(params=SERVER_KINDS_REDIS)
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a Redis server: the embedded one, and the external one when MOODSTREAM_TEST_REDIS_URL is set."""
    if request.param == "external":
        return EXTERNAL_REDIS_URL
    return str(request.getfixturevalue("embedded_redis_url"))


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses (``moodstream-test:<hex>:``); its keys are deleted after the test."""
    prefix = f"moodstream-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=SERVER_KINDS_DATABASE)
def admin_database_url(request: pytest.FixtureRequest) -> str:
    """URL of an administrative database of a PostgreSQL server (embedded, and external when configured)."""
    if request.param == "external":
        return EXTERNAL_DATABASE_URL
    return str(request.getfixturevalue("embedded_postgres_url"))


@pytest.fixture
def database_url(admin_database_url: str) -> Iterator[str]:
    """URL (postgresql+psycopg) of a fresh empty database, dropped (with its sessions) after the test."""
    name = f"moodstream_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(parse_database_url(admin_database_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = parse_database_url(admin_database_url).set(database=name)
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def migrated_database_url(database_url: str) -> str:
    """``database_url`` with every migration applied (what ``moodstream db upgrade`` does)."""
    engine = create_database_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return database_url


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    """An engine on ``migrated_database_url``, disposed after the test."""
    e = create_database_engine(migrated_database_url)
    yield e
    e.dispose()
