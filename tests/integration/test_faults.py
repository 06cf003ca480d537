"""Fault tests of the stream plumbing (no models): the history check ``counted + dead + shed = published``
with no frame counted twice, under trimming, backpressure and Redis refusing writes.

Frames are published by the real ``FramePublisher`` with known identities; the real worker loop carries
them through a stage that turns each frame into an emotions entry with no face (what the detector and
classifier write for a frame without faces), then the real aggregator and losses stages count them in
PostgreSQL. The tests with real models and ``kill -9`` are in test_faults_kill.py.

Figures printed with ``-s`` (frames published/counted/shed, peak stream length, recovery times) are the
ones recorded in RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

from moodstream.common.streams import StreamNames, connect_redis, ensure_group
from moodstream.ingest.publisher import FramePublisher
from moodstream.runtime.database import create_database_engine, migrate
from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.processes import DB_TRANSIENT
from moodstream.runtime.stages import AggregatorStage, LossesStage
from moodstream.runtime.worker import BatchResult, Entry, StreamWorker, WorkerConfig
from moodstream.schemas.messages import EmotionsMessage, FrameKey, FrameMessage
from tests.integration.helpers import (
    assert_history,
    history,
    pending_of_group,
    running,
    skip_mixed_server_kinds,
)

FAST = WorkerConfig(batch_size=4, block_ms=50, claim_idle_ms=100, claim_interval_s=0.1, heartbeat_s=0.5)
EPOCH = 1_700_000_000_000


class FramesToEmotions:
    """The detector + classifier hop for frames without faces: one emotions entry per frame."""

    stage = "detector"

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        result = BatchResult()
        for entry in entries:
            frame = FrameMessage.decode(entry.fields)
            result.outputs.append(EmotionsMessage(frame.key, frame.captured_ms, 0, 0).encode())
        return result


def pipeline_workers(client: redis.Redis, url: str, names: StreamNames, engine: Engine) -> list[StreamWorker]:
    """frames -> emotions (no-face stage), emotions -> counts, dead -> losses: the real worker loop, with
    the database errors the stage processes treat as transient (wait and retry the batch)."""

    def worker(stream: str, group: str, handler: Any, output: str | None) -> StreamWorker:
        return StreamWorker(
            connect_redis(url), url, names, stream=stream, group=group, handler=handler,
            output_stream=output, config=FAST, transient=DB_TRANSIENT,
        )  # fmt: skip

    return [
        worker(names.frames, "detector", FramesToEmotions(), names.emotions),
        worker(names.emotions, "aggregator", AggregatorStage(engine, 60, client, names), None),
        worker(names.dead, "aggregator-losses", LossesStage(engine, 60), None),
    ]


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not reached within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def publish(publisher: FramePublisher, camera: str, seqs: range, payload: bytes = b"\xff\xd8\xff") -> None:
    for seq in seqs:
        publisher(FrameMessage(FrameKey("store", camera, EPOCH, seq), EPOCH + seq * 250, payload))


@pytest.fixture(autouse=True)
def same_server_kinds(request: pytest.FixtureRequest) -> None:
    """Run embedded+embedded and external+external; mixed pairs add time and no coverage here."""
    skip_mixed_server_kinds(request)


def test_stream_trimmed_past_pending_entries_counts_them_as_shed_and_reclaim_goes_on(
    redis_url: str, redis_prefix: str, engine: Engine
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    publisher = FramePublisher(client, redis_url, names, maxlen=100_000, stop=threading.Event())
    publish(publisher, "cam", range(30))
    ensure_group(client, names.frames, "detector")
    client.xreadgroup("detector", "crashed-a", {names.frames: ">"}, count=10)  # seq 0-9, never acknowledged
    client.xtrim(names.frames, maxlen=20, approximate=False)  # their payloads are gone (nil when read)
    client.xreadgroup("detector", "crashed-b", {names.frames: ">"}, count=5)  # seq 10-14, still readable
    time.sleep(0.2)  # both consumers' entries are now idle past claim_idle_ms
    assert publisher.account_shed() == 10
    with running(pipeline_workers(client, redis_url, names, engine)):
        seconds = wait_until(lambda: len(history(engine)["applied"]) >= 30, 30)
        time.sleep(0.3)
    h = history(engine)
    print(f"\ntrimmed past pending: published 30, counted {h['counted']}, shed {h['shed']}, "
          f"dead {h['dead']}, drained in {seconds:.1f} s")  # fmt: skip
    assert_history(h, {("cam", s) for s in range(30)})
    assert (h["counted"], h["shed"]) == (20, 10)
    client.close()


def test_trimmed_pending_entries_reclaimed_before_the_publisher_looks_are_still_shed(
    redis_url: str, redis_prefix: str, engine: Engine
) -> None:
    """The race: a worker claims trimmed entries (Redis 7 then drops them from the pending list) before the
    ingest's next accounting tick; they must still be counted as shed, not lost."""
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    publisher = FramePublisher(client, redis_url, names, maxlen=100_000, stop=threading.Event())
    publish(publisher, "cam", range(30))
    ensure_group(client, names.frames, "detector")
    client.xreadgroup("detector", "crashed", {names.frames: ">"}, count=10)
    client.xtrim(names.frames, maxlen=20, approximate=False)
    time.sleep(0.2)
    with running(pipeline_workers(client, redis_url, names, engine)):
        wait_until(lambda: len(history(engine)["applied"]) >= 20, 30)
        time.sleep(0.5)  # several reclaim passes over the trimmed entries
        publisher.account_shed()  # the ingest's tick comes after the worker's reclaim
        wait_until(lambda: len(history(engine)["applied"]) >= 30, 30)
    h = history(engine)
    assert_history(h, {("cam", s) for s in range(30)})
    assert (h["counted"], h["shed"]) == (20, 10)
    client.close()


def test_detectors_stopped_while_eight_cameras_publish_stays_within_caps_and_counts_shed(
    redis_url: str, redis_prefix: str, engine: Engine
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    maxlen, per_camera, cameras = 100, 120, [f"cam-{i}" for i in range(8)]
    publisher = FramePublisher(client, redis_url, names, maxlen=maxlen, stop=threading.Event())
    ensure_group(client, names.frames, "detector")  # the detectors ran once, then stopped
    payload = b"\xff\xd8\xff" + bytes(2000)
    peak_len = peak_bytes = 0
    for seq in range(per_camera):
        for camera in cameras:
            publish(publisher, camera, range(seq, seq + 1), payload)
        if seq % 10 == 9:
            publisher.account_shed()  # what the ingest supervisor does on every tick
            peak_len = max(peak_len, int(client.xlen(names.frames)))
            peak_bytes = max(peak_bytes, int(client.memory_usage(names.frames) or 0))
    publisher.account_shed()
    in_stream = int(client.xlen(names.frames))
    published = {(c, s) for c in cameras for s in range(per_camera)}
    with running(pipeline_workers(client, redis_url, names, engine)):
        wait_until(lambda: len(history(engine)["applied"]) >= len(published), 45)
        time.sleep(0.3)
    h = history(engine)
    print(f"\ndetectors stopped: published {len(published)}, peak stream length {peak_len} (cap {maxlen}), "
          f"peak memory {peak_bytes / 1024:.0f} KiB, counted {h['counted']}, shed {h['shed']}")  # fmt: skip
    assert peak_len <= maxlen + 100, "approximate MAXLEN trims whole nodes of at most 100 entries"
    assert peak_bytes <= (maxlen + 100) * 2 * len(payload)
    assert_history(h, published)
    assert h["counted"] == in_stream
    assert set(h["shed_per_camera"]) == set(cameras) and all(v > 0 for v in h["shed_per_camera"].values())
    client.close()


def test_producer_waits_while_redis_refuses_writes_and_publishes_everything_after(server_dir: Path) -> None:
    server = EmbeddedRedis(server_dir)
    url = server.start()
    try:
        client = connect_redis(url)
        names = StreamNames("fault:")
        stop = threading.Event()
        publisher = FramePublisher(client, url, names, maxlen=100_000, stop=stop)
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", used + 1_000_000)
        payload = b"\xff\xd8\xff" + bytes(50_000)
        failures: list[BaseException] = []

        def camera() -> None:
            try:
                publish(publisher, "cam", range(60), payload)  # 3 MB: more than Redis may hold
            except BaseException as exc:  # the test reports any escape
                failures.append(exc)

        thread = threading.Thread(target=camera, daemon=True)
        thread.start()
        wait_until(lambda: int(client.xlen(names.frames)) > 5, 20)
        time.sleep(1.5)
        held = int(client.xlen(names.frames))
        assert thread.is_alive() and not failures, f"the producer gave up: {failures!r}"
        assert held < 60, "Redis should have refused writes by now"
        client.config_set("maxmemory", 0)
        recovery = wait_until(lambda: not thread.is_alive(), 30)
        entries: Any = client.xrange(names.frames)
        seqs = [FrameMessage.decode(f).key.seq for _, f in entries]
        print(f"\nmaxmemory: {held} frames accepted before Redis refused writes; "
              f"all 60 published {recovery:.1f} s after room was made")  # fmt: skip
        assert failures == []
        assert seqs == list(range(60)), "every frame once, in order"
        client.close()
    finally:
        server.stop()


def test_redis_killed_and_restarted_on_its_append_only_file(
    server_dir: Path, engine: Engine, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params.get("admin_database_url") == "external":
        pytest.skip("a private Redis is killed here; one database kind is enough")
    server = EmbeddedRedis(server_dir)
    url = server.start()
    names = StreamNames("fault:")
    client = connect_redis(url)
    stop = threading.Event()
    publisher = FramePublisher(client, url, names, maxlen=100_000, stop=stop)
    published = {("cam", s) for s in range(40)}

    def camera_body() -> None:  # 20 frames/s, blocking (retrying) while Redis is down
        for seq in range(40):
            publish(publisher, "cam", range(seq, seq + 1))
            time.sleep(0.05)

    camera = threading.Thread(target=camera_body, daemon=True)
    try:
        with running(pipeline_workers(client, url, names, engine)):
            camera.start()
            wait_until(lambda: len(history(engine)["applied"]) >= 10, 30)
            pid = int(server.pidfile.read_text())
            os.kill(pid, signal.SIGKILL)  # no shutdown, no final fsync: the AOF as the kernel has it
            killed = time.monotonic()
            time.sleep(1.0)
            server = EmbeddedRedis(server_dir)
            server.start()
            restarted = time.monotonic()
            wait_until(lambda: not camera.is_alive(), 60)
            wait_until(lambda: len(history(engine)["applied"]) >= len(published), 60)
            caught_up = time.monotonic()
            time.sleep(0.5)
        h = history(engine)
        print(f"\nRedis kill -9: down {restarted - killed:.1f} s, published 40, counted {h['counted']},"
              f" shed {h['shed']}, dead {h['dead']}; caught up in {caught_up - restarted:.1f} s")  # fmt: skip
        assert_history(h, published)
    finally:
        stop.set()
        client.close()
        server.stop()


@pytest.mark.parametrize("outage_s", [5, pytest.param(60, marks=pytest.mark.slow)], ids=["5s", "60s-soak"])
def test_postgres_stopped_the_aggregator_waits_acknowledges_nothing_and_catches_up(
    outage_s: int, redis_url: str, redis_prefix: str, server_dir: Path, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params.get("redis_url") == "external":
        pytest.skip("a private PostgreSQL is stopped here; one Redis kind is enough")
    postgres = EmbeddedPostgres(server_dir)
    engine = create_database_engine(postgres.start(), check=False)
    migrate(engine)
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    publisher = FramePublisher(client, redis_url, names, maxlen=100_000, stop=threading.Event())
    try:
        with running(pipeline_workers(client, redis_url, names, engine)):
            publish(publisher, "cam", range(20))
            wait_until(lambda: len(history(engine)["applied"]) >= 20, 30)
            postgres.stop()
            stopped = time.monotonic()
            publish(publisher, "cam", range(20, 40))
            time.sleep(outage_s)
            held = pending_of_group(client, names.emotions, "aggregator")
            postgres = EmbeddedPostgres(server_dir)
            postgres.start()
            restarted = time.monotonic()
            caught_up = wait_until(lambda: len(history(engine)["applied"]) >= 40, 60)
            time.sleep(0.3)
        h = history(engine)
        print(f"\nPostgreSQL down {restarted - stopped:.0f} s: aggregator held {held} unacknowledged; "
              f"counted {h['counted']} of 40, caught up {caught_up:.1f} s after the restart")  # fmt: skip
        assert held > 0, "the aggregator must not acknowledge what it could not commit"
        assert_history(h, {("cam", s) for s in range(40)})
        assert (h["counted"], h["dead"]) == (40, 0)
    finally:
        engine.dispose()
        client.close()
        postgres.stop()
