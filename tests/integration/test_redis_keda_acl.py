"""The Redis user of KEDA's redis-streams scaler (deploy/k8s/redis/keda.acl) on real Redis servers: it can
send what the scaler sends (INFO for the server version, XINFO GROUPS for the lag, XPENDING, XLEN) on the
pipeline's streams, and nothing that reads a frame or changes anything."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from moodstream.common.streams import StreamNames
from moodstream.runtime.processes import GROUPS
from tests.integration.test_redis_acl import url_as

KEDA_ACL = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "redis" / "keda.acl"
PASSWORD = "k3da-pa:ss%40"


def keda_rules(prefix: str) -> list[str]:
    """The rules of the committed KEDA user, key pattern moved to ``prefix``."""
    (line,) = [line for line in KEDA_ACL.read_text(encoding="utf-8").splitlines() if line.startswith("user ")]
    words = line.split()
    assert words[:2] == ["user", "moodstream-keda"] and "~moodstream:*" in words
    return [f"~{prefix}*" if word == "~moodstream:*" else word for word in words[2:]]


@pytest.fixture
def keda(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client logged in as a unique user with the KEDA rules on ``redis_prefix`` (user deleted after)."""
    name = f"moodstream-keda-test-{uuid.uuid4().hex[:10]}"
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", name, "reset", *keda_rules(redis_prefix), f">{PASSWORD}")
    client = redis.Redis.from_url(url_as(redis_url, name, PASSWORD))
    try:
        yield client
    finally:
        client.close()
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


def test_keda_reads_the_backlog_of_a_consumer_group(
    keda: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    frames = StreamNames(redis_prefix).frames
    admin = redis.Redis.from_url(redis_url)
    admin.xgroup_create(frames, GROUPS["detector"], id="0", mkstream=True)
    for i in range(5):
        admin.xadd(frames, {"n": i})
    admin.xreadgroup(GROUPS["detector"], "worker-1", {frames: ">"}, count=2)  # 2 pending, 3 not delivered
    admin.close()

    major = int(str(keda.info()["redis_version"]).split(".")[0])  # KEDA checks it before asking for lag
    (group,) = keda.xinfo_groups(frames)
    assert group["name"] == GROUPS["detector"].encode() and group["pending"] == 2
    if major >= 7:  # what the lagCount trigger scales on (Redis 6.2, embedded here, has no lag)
        assert group["lag"] == 3
    assert keda.xpending(frames, GROUPS["detector"])["pending"] == 2
    assert keda.xlen(frames) == 5


REFUSED: list[tuple[str, Callable[[redis.Redis, str], Any]]] = [
    ("XRANGE (reads frames)", lambda c, s: c.xrange(s)),
    ("XREADGROUP", lambda c, s: c.xreadgroup("detector", "keda", {s: ">"})),
    ("XADD", lambda c, s: c.xadd(s, {"a": 1})),
    ("XACK", lambda c, s: c.xack(s, "detector", "0-1")),
    ("XGROUP DESTROY", lambda c, s: c.xgroup_destroy(s, "detector")),
    ("DEL", lambda c, s: c.delete(s)),
    ("HGETALL", lambda c, s: c.hgetall(s + ":stats")),
    ("XLEN outside the prefix", lambda c, s: c.xlen("other:frames")),
    ("KEYS", lambda c, s: c.keys("*")),
    ("CONFIG GET", lambda c, s: c.config_get("maxmemory")),
]


@pytest.mark.parametrize(("what", "command"), REFUSED, ids=[w for w, _ in REFUSED])
def test_keda_is_refused_everything_else(
    keda: redis.Redis, redis_prefix: str, what: str, command: Callable[[redis.Redis, str], Any]
) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        command(keda, StreamNames(redis_prefix).frames)
