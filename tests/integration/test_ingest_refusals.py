"""Redis refusing the ingest's writes (READONLY, MISCONF, NOPERM; OOM is in test_faults.py): the frame is
retried until Redis accepts it, the camera waits meanwhile, so ``seq`` has no gap and no frame is dropped.

Each case turns a private embedded Redis into the refusing state for real (a replica of an unreachable
master, a failed snapshot with ``stop-writes-on-bgsave-error``, an ACL user without XADD), publishes through
the real ``FramePublisher``, and then lifts the refusal.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from moodstream.common.streams import StreamNames
from moodstream.ingest.publisher import FramePublisher
from moodstream.runtime.embedded import EmbeddedRedis
from moodstream.schemas.messages import FrameMessage
from tests.integration.test_faults import publish, wait_until

PUBLISHER = "publisher-test"
PASSWORD = "refusal-test-password"  # a throwaway user of a private server


def free_port() -> int:
    """A TCP port nothing listens on (the unreachable master)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readonly(admin: redis.Redis) -> Callable[[], None]:
    """The server becomes a replica of a master that does not answer: every write gets READONLY."""
    admin.replicaof("127.0.0.1", free_port())
    return lambda: admin.replicaof("NO", "ONE")


def misconf(admin: redis.Redis) -> Callable[[], None]:
    """A snapshot that cannot be written, with ``stop-writes-on-bgsave-error``: writes get MISCONF."""
    directory = admin.config_get("dir")["dir"]
    admin.config_set("save", "3600 1")
    admin.config_set("stop-writes-on-bgsave-error", "yes")
    admin.config_set("dir", "/proc")
    admin.bgsave()
    wait_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err", 10)

    def lift() -> None:
        admin.config_set("dir", directory)
        admin.bgsave()
        wait_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "ok", 10)

    return lift


def noperm(admin: redis.Redis) -> Callable[[], None]:
    """The publisher's ACL user may do everything but XADD: NOPERM; the operator then grants it."""
    admin.execute_command("ACL", "SETUSER", PUBLISHER, "+xadd")  # created by the test as a full user
    admin.execute_command("ACL", "SETUSER", PUBLISHER, "-xadd")
    return lambda: admin.execute_command("ACL", "SETUSER", PUBLISHER, "+xadd")


REFUSALS: dict[str, tuple[Callable[[redis.Redis], Callable[[], None]], type[redis.ResponseError]]] = {
    "READONLY (a replica after a failover)": (readonly, redis.exceptions.ReadOnlyError),
    "MISCONF (snapshots failing)": (misconf, redis.ResponseError),
    "NOPERM (ACL without XADD)": (noperm, redis.exceptions.NoPermissionError),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_refused_frame_is_retried_and_seq_keeps_no_gap(case: str, server_dir: Path) -> None:
    provoke, error = REFUSALS[case]
    server = EmbeddedRedis(server_dir)
    url = server.start()
    admin = redis.Redis(unix_socket_path=str(server.socket_path))
    admin.execute_command("ACL", "SETUSER", PUBLISHER, "on", f">{PASSWORD}", "~*", "&*", "+@all")
    client = redis.Redis(unix_socket_path=str(server.socket_path), username=PUBLISHER, password=PASSWORD)
    names = StreamNames("refusal:")
    stop = threading.Event()
    publisher = FramePublisher(client, url, names, maxlen=1000, stop=stop)
    lift: Callable[[], None] | None = None
    try:
        publish(publisher, "cam", range(5))
        lift = provoke(admin)
        with pytest.raises(error):
            client.xadd("refusal:probe", {"a": "1"})
        camera = threading.Thread(target=publish, args=(publisher, "cam", range(5, 10)), daemon=True)
        camera.start()
        time.sleep(1.0)
        assert camera.is_alive(), "the camera went on: refused frames were dropped"
        assert publisher.refused > 0 and int(admin.xlen(names.frames)) == 5
        lift, lifted = None, lift
        lifted()
        recovered = wait_until(lambda: not camera.is_alive(), 20)
        print(f"\n{case}: {publisher.refused} refused attempts in 1 s, all 10 frames published "
              f"{recovered:.2f} s after the refusal was lifted")  # fmt: skip
        entries: Any = admin.xrange(names.frames)
        seqs = [FrameMessage.decode(fields).key.seq for _, fields in entries]
        assert seqs == list(range(10)), "every frame once, in order, no gap"
        assert admin.hget(names.stats("ingest"), "store/cam:frames_out") == b"10"
    finally:
        stop.set()
        if lift is not None:  # the test failed while Redis refused: lift it, so the server can stop
            with contextlib.suppress(redis.RedisError):
                lift()
        client.close()
        admin.close()
        server.stop()
