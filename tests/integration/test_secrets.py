"""A sentinel password never leaks: not in a log line, an error, stdout/stderr, a metric, Redis or Postgres.

The sentinel holds ``@``, ``:`` and ``%40`` (the characters that break URL parsing and naive redaction)
and is made of fragments starting with ``Sntl``, so a partial leak is caught too. It is used as a
camera password (``${CAM_PASS}`` in stores.yaml, in a URL's userinfo and under a query key that looks
like nothing secret), as the database password (raw and URL-encoded) and as
the Redis password of a least-privilege ACL user, while every failure is forced (unreachable cameras,
a camera answering 401, unreachable PostgreSQL, wrong Redis password, invalid registry and settings)
with DEBUG logging on.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from sqlalchemy import text
from typer.testing import CliRunner

from moodstream.cli.app import build_app
from moodstream.common.streams import StreamNames
from moodstream.runtime.database import create_database_engine, sync_registry
from moodstream.runtime.privacy import scan_database
from moodstream.schemas.messages import EmotionsMessage, FrameKey
from moodstream.schemas.registry import load_registry
from tests.integration.test_redis_acl import url_as, worker_rules

SENTINEL = "Sntl1Kq@Sntl2Wx:Sntl3%40Zy"
MARK = "Sntl"
"""Every fragment of the sentinel starts with this; no other text in the tests does."""
ENCODED = quote(SENTINEL, safe="")
UNREACHABLE_DB_RAW = f"postgresql://moodstream:{SENTINEL}@127.0.0.1:1/moodstream"
UNREACHABLE_DB = f"postgresql://moodstream:{ENCODED}@127.0.0.1:1/moodstream"
UNREACHABLE_REDIS = f"redis://moodstream:{ENCODED}@127.0.0.1:1/0"

REGISTRY = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: UTC
    cameras:
      - id: rtsp-cam
        source: rtsp://admin:${{CAM_PASS}}@127.0.0.1:1/stream1
        fps: 2
      - id: http-cam
        source: http://admin:${{CAM_PASS}}@127.0.0.1:{http_port}/video.mjpg
        fps: 2
      - id: query-cam
        source: http://127.0.0.1:{http_port}/snapshot.cgi?user=admin&code=${{CAM_PASS}}
        fps: 2
"""

BROKEN_REGISTRY = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: UTC
    cameras:
      - id: ftp-cam
        source: ftp://admin:${CAM_PASS}@127.0.0.1/x
        fps: 2
      - id: bad-fps
        source: rtsp://admin:${CAM_PASS}@127.0.0.1/s
        fps: ${CAM_PASS}
      - id: no-host
        source: rtsp://admin:${CAM_PASS}@/s
        fps: 2
"""


def assert_no_leak(where: str, text: str) -> None:
    """No fragment of the sentinel in ``text`` (names the place, never echoes the secret)."""
    if MARK in text:
        line = next(x for x in text.splitlines() if MARK in x)
        shown = line.replace(MARK, "<SENTINEL>")[:300]
        pytest.fail(f"the sentinel password leaked into {where}: {shown}")


class Unauthorized(http.server.BaseHTTPRequestHandler):
    """A camera that refuses every request with 401 (wrong credentials)."""

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="camera"')
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_401_port() -> Iterator[int]:
    """Port of a loopback HTTP camera answering 401."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry(tmp_path: Path, http_401_port: int) -> Path:
    path = tmp_path / "stores.yaml"
    path.write_text(REGISTRY.format(http_port=http_401_port))
    return path


@pytest.fixture
def broken_registry(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_REGISTRY)
    return path


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
    env.update(
        CAM_PASS=SENTINEL,
        MOODSTREAM_LOG_LEVEL="DEBUG",
        MOODSTREAM_DATA_DIR=str(tmp_path / "data"),
        MOODSTREAM_CONNECT_TIMEOUT="2",
        PYTHONUNBUFFERED="1",
    )
    return env


CLI_CASES: dict[str, tuple[list[str], dict[str, str], int]] = {
    "cameras list": (["cameras", "list", "-c", "{registry}"], {}, 0),
    "cameras validate": (["cameras", "validate", "-c", "{registry}"], {}, 0),
    "cameras validate, broken file": (["cameras", "validate", "-c", "{broken}"], {}, 1),
    "db sync, broken file": (
        ["db", "sync", "-c", "{broken}"],
        {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB},
        1,
    ),
    "db upgrade, unreachable": (["db", "upgrade"], {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB}, 1),
    "db upgrade, raw password": (["db", "upgrade"], {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB_RAW}, 1),
    "db sync, unreachable": (
        ["db", "sync", "-c", "{registry}"],
        {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB},
        1,
    ),
    "db create-reader, unreachable": (
        ["db", "create-reader"],
        {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB, "MOODSTREAM_READER_PASSWORD": SENTINEL},
        1,
    ),
    "report, raw password": (
        ["report", "--from", "2024-01-01", "--to", "2024-01-02", "--database-url", UNREACHABLE_DB_RAW],
        {},
        1,
    ),
    "status, unreachable Redis": (["status"], {"MOODSTREAM_REDIS_URL": UNREACHABLE_REDIS}, 1),
    "settings, bad Redis scheme": (
        ["db", "upgrade"],
        {"MOODSTREAM_REDIS_URL": f"http://u:{SENTINEL}@h/", "MOODSTREAM_DATABASE_URL": UNREACHABLE_DB},
        1,
    ),
    "run, unreachable servers": (
        ["run", "-c", "{registry}", "--duration", "5"],
        {"MOODSTREAM_DATABASE_URL": UNREACHABLE_DB, "MOODSTREAM_REDIS_URL": UNREACHABLE_REDIS},
        1,
    ),
}


def _argv(template: list[str], registry: Path, broken: Path) -> list[str]:
    return [a.format(registry=registry, broken=broken) for a in template]


@pytest.mark.parametrize(("argv", "extra_env", "code"), CLI_CASES.values(), ids=CLI_CASES.keys())
def test_cli_process_output_never_shows_the_password(
    argv: list[str],
    extra_env: dict[str, str],
    code: int,
    registry: Path,
    broken_registry: Path,
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "moodstream.cli.app", *_argv(argv, registry, broken_registry)]
    env = {**base_env(tmp_path), **extra_env}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-2000:].replace(MARK, "<SENTINEL>")
    assert "Traceback" not in output
    assert_no_leak("stdout/stderr", output)
    if code:
        assert "error" in result.stderr.lower(), "a failure must say what went wrong"


@pytest.mark.parametrize(("argv", "extra_env", "code"), CLI_CASES.values(), ids=CLI_CASES.keys())
def test_cli_debug_log_records_and_exceptions_never_hold_the_password(
    argv: list[str],
    extra_env: dict[str, str],
    code: int,
    registry: Path,
    broken_registry: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if argv[0] == "run":
        pytest.skip("`run` spawns processes and installs signal handlers: covered as a process above")
    caplog.set_level(logging.DEBUG)
    env = {**base_env(tmp_path), **extra_env}
    result = CliRunner().invoke(build_app(), _argv(argv, registry, broken_registry), env=env)
    assert result.exit_code == code
    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {logging.Formatter().formatException(r.exc_info)}"
        if r.exc_info
        else f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
    )
    assert_no_leak("a DEBUG log record", records)
    assert_no_leak("the command output", result.output + (result.stderr or ""))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert_no_leak("the exception", f"{type(result.exception).__name__}: {result.exception}")


# ---------------------------------------------------------------------------- stage processes


@pytest.fixture
def sentinel_redis_user(redis_url: str, redis_prefix: str) -> Iterator[str]:
    """URL of a least-privilege Redis user whose password is the sentinel (deleted after)."""
    name = f"moodstream-secret-{uuid.uuid4().hex[:10]}"
    with redis.Redis.from_url(redis_url) as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", *worker_rules(redis_prefix), f">{SENTINEL}")
    try:
        yield url_as(redis_url, name, SENTINEL)
    finally:
        with redis.Redis.from_url(redis_url) as admin:
            admin.execute_command("ACL", "DELUSER", name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "moodstream.cli.app", *argv], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


READERS: dict[bytes, Any] = {
    b"hash": lambda c, k: c.hgetall(k),
    b"stream": lambda c, k: c.xrange(k),
    b"list": lambda c, k: c.lrange(k, 0, -1),
    b"string": lambda c, k: c.get(k),
    b"set": lambda c, k: c.smembers(k),
    b"zset": lambda c, k: c.zrange(k, 0, -1),
}
"""Redis key type -> how to read every value of such a key."""


def _redis_dump(client: redis.Redis, prefix: str) -> str:
    """Every value under ``prefix``, as text, whatever the key type."""
    parts = []
    for key in client.scan_iter(match=f"{prefix}*"):
        kind: Any = client.type(key)
        value = READERS[kind](client, key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def test_stage_processes_with_every_failure_forced_leak_nothing(
    sentinel_redis_user: str,
    redis_url: str,
    redis_prefix: str,
    registry: Path,
    tmp_path: Path,
) -> None:
    names = StreamNames(redis_prefix)
    admin = redis.Redis.from_url(redis_url)
    emotions: Any = EmotionsMessage(FrameKey("s1", "rtsp-cam", 1, 0), int(time.time() * 1000), 0, 0).encode()
    admin.xadd(names.emotions, emotions)  # makes the aggregator try the unreachable database
    env = {**base_env(tmp_path), "MOODSTREAM_STREAM_PREFIX": redis_prefix}
    port = _free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest", "aggregate", "wrong-password")}
    procs = {
        "ingest": _start(
            ["ingest", "-c", str(registry)],
            {**env, "MOODSTREAM_REDIS_URL": sentinel_redis_user},
            logs["ingest"],
        ),
        "aggregate": _start(
            ["aggregate", "--metrics-port", str(port)],
            {**env, "MOODSTREAM_REDIS_URL": sentinel_redis_user, "MOODSTREAM_DATABASE_URL": UNREACHABLE_DB},
            logs["aggregate"],
        ),
        "wrong-password": _start(
            ["ingest", "-c", str(registry)],
            {**env, "MOODSTREAM_REDIS_URL": sentinel_redis_user.replace(ENCODED, quote(SENTINEL + "x"))},
            logs["wrong-password"],
        ),
    }
    metrics = ""
    try:
        both_cameras_failed = _wait_for(
            lambda: (
                logs["ingest"].read_text().count("reconnecting in") >= 3
                and "a server is unreachable" in logs["aggregate"].read_text()
                and "invalid username-password" in logs["wrong-password"].read_text()
            ),
            45,
        )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                metrics = response.read().decode()
        except OSError as exc:
            metrics = f"(metrics unavailable: {exc})"
        # The camera states are written on the ingest's own cadence: ask again until the failing
        # camera's error is there (bounded), so a loaded machine does not read a state from before it.
        for _ in range(10):
            status = subprocess.run(
                [sys.executable, "-m", "moodstream.cli.app", "status", "--json"],
                env={**env, "MOODSTREAM_REDIS_URL": redis_url},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if _query_cam_error(status.stdout):
                break
            time.sleep(1.5)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    texts = {name: path.read_text(errors="replace") for name, path in logs.items()}
    for name, text_ in texts.items():
        assert_no_leak(f"the {name} process's stderr", text_)
    assert both_cameras_failed, "failures were not all forced:\n" + "\n".join(
        t[-1500:].replace(MARK, "<SENTINEL>") for t in texts.values()
    )
    assert " INFO " in texts["ingest"], "the process logged below WARNING (MOODSTREAM_LOG_LEVEL=DEBUG)"
    assert "moodstream_frames_in" in metrics
    assert_no_leak("the Prometheus metrics", metrics)
    assert_no_leak("Redis", _redis_dump(admin, redis_prefix))
    admin.close()
    assert_no_leak("`status --json` with live cameras", status.stdout + status.stderr)
    cameras = {c["label"]: c for c in json.loads(status.stdout)["cameras"]}
    assert {"s1/rtsp-cam", "s1/http-cam", "s1/query-cam"} <= set(cameras)
    assert cameras["s1/query-cam"]["last_error"], "the failing camera's error is shown"


def _query_cam_error(status_json: str) -> bool:
    """Whether `status --json` output shows an error for the camera with the password in its query."""
    try:
        cameras = json.loads(status_json)["cameras"]
    except (ValueError, KeyError):
        return False
    return any(c.get("label") == "s1/query-cam" and c.get("last_error") for c in cameras)


def test_registry_synced_into_postgres_keeps_no_password(
    registry: Path, migrated_database_url: str, http_401_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_PASS", SENTINEL)
    loaded = load_registry(registry)
    engine = create_database_engine(migrated_database_url)
    try:
        sync_registry(engine, loaded)
        with engine.connect() as conn:
            assert scan_database(conn, [SENTINEL], check_images=False) == []
            sources = conn.execute(text("SELECT source_redacted FROM cameras ORDER BY id")).scalars().all()
    finally:
        engine.dispose()
    assert [s.split("@")[0] for s in sources] == [
        "http://admin:***",
        f"http://127.0.0.1:{http_401_port}/snapshot.cgi?user=admin&code=***",
        "rtsp://admin:***",
    ]
