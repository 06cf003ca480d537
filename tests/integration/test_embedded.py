"""Embedded Redis and PostgreSQL: start, reuse when already running, stop cleanly, keep data."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis, embedded_servers
from moodstream.runtime.settings import Settings


def test_embedded_redis_reuse_stop_and_persistence(server_dir: Path) -> None:
    first = EmbeddedRedis(server_dir)
    url = first.start()
    try:
        with redis.Redis.from_url(url) as client:
            client.xadd("moodstream-test:s", {"k": "v"})
        second = EmbeddedRedis(server_dir)
        assert second.start() == url  # reused, not a second server
        second.stop()  # not its server: must not stop it
        assert first.is_running()
    finally:
        first.stop()
    assert not first.is_running()
    assert not first.pidfile.exists() and not first.socket_path.exists()  # redis removes them on a clean exit
    with EmbeddedRedis(server_dir) as again, redis.Redis.from_url(again.url) as client:
        assert client.xlen("moodstream-test:s") == 1  # the append-only file kept the stream


def test_embedded_redis_with_a_long_data_dir_uses_a_short_socket(server_dir: Path) -> None:
    deep = server_dir / ("d" * 60) / ("e" * 60)
    digest = hashlib.sha256(str((deep / "redis").resolve()).encode()).hexdigest()[:12]
    squatted = Path(tempfile.gettempdir()) / f"moodstream-{digest}"  # the old, predictable folder
    squatted.mkdir(mode=0o777, exist_ok=True)
    with EmbeddedRedis(deep) as server:
        assert len(str(server.socket_path)) <= 100
        assert server.socket_path.parent != squatted
        assert stat.S_IMODE(server.socket_path.parent.stat().st_mode) == 0o700
        assert server.socket_path.parent.stat().st_uid == os.geteuid()
        assert (deep / "redis" / "redis.conf").exists()
        socket_dir = server.socket_path.parent
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
    assert not socket_dir.exists()  # the short socket folder goes with the server
    squatted.rmdir()


def test_embedded_postgres_reuse_stop_and_persistence(server_dir: Path) -> None:
    first = EmbeddedPostgres(server_dir)
    url = first.start()
    try:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (x int)"))
            conn.execute(text("INSERT INTO kept VALUES (42)"))
        engine.dispose()
        second = EmbeddedPostgres(server_dir)
        assert second.start() == url
        second.stop()
        assert first.is_running()
    finally:
        first.stop()
    assert not first.is_running()
    with EmbeddedPostgres(server_dir) as again:
        engine = create_engine(again.url())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM kept")).scalar() == 42
        engine.dispose()


def test_embedded_servers_uses_configured_urls_without_starting_anything(server_dir: Path) -> None:
    settings = Settings(
        redis_url="redis://example.invalid:6379/0", database_url="postgresql://h/db", data_dir=server_dir
    )
    with embedded_servers(settings) as urls:
        assert urls.redis_url == settings.redis_url and urls.database_url == settings.database_url
    assert not (server_dir / "redis").exists() and not (server_dir / "postgres").exists()


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_embedded_servers_start_what_is_not_configured(server_dir: Path, kind: str) -> None:
    settings = Settings(
        redis_url=None if kind == "redis" else "redis://example.invalid:6379/0",
        database_url=None if kind == "postgres" else "postgresql://h/db",
        data_dir=server_dir,
    )
    with embedded_servers(settings) as urls:
        if kind == "redis":
            with redis.Redis.from_url(urls.redis_url) as client:
                assert client.ping()
        else:
            engine = create_engine(urls.database_url)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
            engine.dispose()
    assert not EmbeddedRedis(server_dir).is_running() and not EmbeddedPostgres(server_dir).is_running()


def test_concurrent_starts_share_one_server(server_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from moodstream.runtime.embedded import EmbeddedRedis; "
        "r = EmbeddedRedis(Path(sys.argv[1])); print(r.start(), r._owned)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(server_dir)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    try:
        assert len({url for url, _ in outputs}) == 1
        assert sorted(owned for _, owned in outputs) == ["False", "False", "True"]
    finally:
        no_retry = Retry(NoBackoff(), 0)
        with redis.Redis.from_url(outputs[0][0], retry=no_retry) as client, suppress(redis.ConnectionError):
            client.shutdown(nosave=False)


def _private(path: Path) -> bool:
    return not stat.S_IMODE(path.lstat().st_mode) & 0o077


def test_embedded_redis_keeps_frames_on_disk_private(server_dir: Path) -> None:
    data = server_dir / "data"
    with EmbeddedRedis(data) as server, redis.Redis.from_url(server.url) as client:
        client.xadd("moodstream-test:frames", {"jpeg": b"\xff\xd8\xff" + b"x" * 100})
        client.bgrewriteaof()
        deadline = time.monotonic() + 10
        while client.info("persistence")["aof_rewrite_in_progress"] and time.monotonic() < deadline:
            time.sleep(0.05)
        files = [server.directory, *server.directory.rglob("*")]
        assert any(p.name.endswith(".aof") for p in files), "the append-only file exists"
        exposed = {
            str(p.relative_to(data)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in files if not _private(p)
        }
        assert exposed == {}
        assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_embedded_postgres_is_private_asks_for_a_password_and_leaves_parents_alone(server_dir: Path) -> None:
    parent = server_dir / "home"
    parent.mkdir(mode=0o700)
    data = parent / ("d" * 50) / ("e" * 40)  # deep: the socket cannot sit in the data directory
    server = EmbeddedPostgres(data)
    url = server.start()
    try:
        socket_dir = Path(make_url(url).query["host"])  # type: ignore[arg-type]
        owner = server.pgdata.stat().st_uid
        assert socket_dir.lstat().st_uid == owner and stat.S_IMODE(socket_dir.lstat().st_mode) == 0o700
        assert stat.S_IMODE((socket_dir / ".s.PGSQL.5432").lstat().st_mode) == 0o700
        assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
        no_password = create_engine(make_url(url)._replace(password=None))
        with pytest.raises(OperationalError, match="password"):
            no_password.connect()
        no_password.dispose()
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700, "a parent of the data directory was opened up"
        assert stat.S_IMODE(server.pgdata.stat().st_mode) == 0o700
        if os.geteuid() == 0:
            assert server.link.is_symlink() and server.pgdata.owner() == "embedded_postgres"
    finally:
        server.delete_cluster()
    assert not socket_dir.exists()
