"""Store-edge mode on two real Redis servers: a store's Redis (the test's server) and a central Redis (a
private embedded one, killed with -9 and restarted on its append-only file to cut the WAN link).

The store runs the real frames publisher, a frames -> emotions hop for frames without faces (what detector,
tracker and classifier write for such a frame) and the real forwarder (``moodstream forward``'s workers);
the center runs the real aggregator and losses stages into PostgreSQL. The history check per camera:
counted + dead + shed = published, every published frame recorded once, none twice, also when results are
forwarded twice.
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
from sqlalchemy import Engine, func, select

from moodstream.cli.status import collect_status
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest.publisher import FramePublisher
from moodstream.runtime.edge import EdgeConfigError, forwarder_workers, max_waiting
from moodstream.runtime.embedded import EmbeddedRedis
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.processes import DB_TRANSIENT, RunOptions
from moodstream.runtime.stages import AggregatorStage, LossesStage
from moodstream.runtime.stages.forwarder import store_silence
from moodstream.runtime.worker import BatchResult, Entry, StreamWorker, WorkerConfig
from moodstream.schemas import tables
from moodstream.schemas.messages import DeadLetter, EmotionsMessage, FrameKey, FrameMessage
from tests.integration.helpers import assert_history, history, running, skip_mixed_server_kinds

FAST = WorkerConfig(batch_size=8, block_ms=50, claim_idle_ms=500, claim_interval_s=0.2, heartbeat_s=0.5)
EPOCH = 1_700_000_000_000
STORE = "hcm-q1"
CAMERAS = ("door", "till")
RESULTS_MAXLEN = 200
"""The store's results cap: the forwarder sheds beyond 180 waiting (90%). The outage adds exactly this many
results, so the cap itself (approximate MAXLEN) never trims an unread one: only the forwarder sheds."""
CENTRAL = StreamNames("central:")


class FramesToEmotions:
    """The store's detector + tracker + classifier for frames without faces: one emotions entry each."""

    stage = "classifier"

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        result = BatchResult()
        for entry in entries:
            frame = FrameMessage.decode(entry.fields)
            result.outputs.append(EmotionsMessage(frame.key, frame.captured_ms, 0, 0).encode())
        return result


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not reached within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def per_camera(engine: Engine) -> dict[str, tuple[int, int, int]]:
    """camera -> (counted, dead, shed) in PostgreSQL."""
    counts, losses = tables.emotion_counts, tables.frame_losses
    with engine.connect() as conn:
        counted = dict(
            conn.execute(
                select(counts.c.camera_id, func.sum(counts.c.frames)).group_by(counts.c.camera_id)
            ).all()
        )
        lost = {
            c: (int(d), int(s))
            for c, d, s in conn.execute(
                select(losses.c.camera_id, func.sum(losses.c.dead), func.sum(losses.c.shed)).group_by(
                    losses.c.camera_id
                )
            ).all()
        }
    return {c: (int(counted.get(c, 0)), *lost.get(c, (0, 0))) for c in CAMERAS}


def test_forwarding_survives_a_cut_link_sheds_counted_beyond_the_cap_and_counts_nothing_twice(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str, engine: Engine, server_dir: Path
) -> None:
    skip_mixed_server_kinds(request)
    central_server = EmbeddedRedis(server_dir)
    central_url = central_server.start()
    store_names = StreamNames(redis_prefix)
    store = connect_redis(redis_url)
    central = connect_redis(central_url)
    stop = threading.Event()
    publisher = FramePublisher(store, redis_url, store_names, maxlen=100_000, stop=stop)
    options = RunOptions(
        redis_url=redis_url,
        prefix=redis_prefix,
        central_redis_url=central_url,
        central_prefix=CENTRAL.prefix,
        results_maxlen=RESULTS_MAXLEN,
        worker=FAST,
        log_level="WARNING",
    )
    seq = {camera: 0 for camera in CAMERAS}
    published: set[tuple[str, int]] = set()

    def publish(frames_per_camera: int) -> None:
        for _ in range(frames_per_camera):
            for camera in CAMERAS:
                key = FrameKey(STORE, camera, EPOCH, seq[camera])
                publisher(FrameMessage(key, EPOCH + seq[camera] * 500, b"\xff\xd8\xff"))
                published.add((camera, seq[camera]))
                seq[camera] += 1

    def worker(client: redis.Redis, url: str, names: StreamNames, stream: str, group: str, handler: Any,
               output: str | None, config: WorkerConfig = FAST) -> StreamWorker:  # fmt: skip
        return StreamWorker(
            client, url, names, stream=stream, group=group, handler=handler, output_stream=output,
            config=config, transient=DB_TRANSIENT,
        )  # fmt: skip

    store_side = [
        worker(connect_redis(redis_url), redis_url, store_names, store_names.frames, "detector",
               FramesToEmotions(), store_names.emotions,
               FAST.model_copy(update={"output_maxlen": RESULTS_MAXLEN})),
        *forwarder_workers(options),
    ]  # fmt: skip
    central_side = [
        worker(connect_redis(central_url), central_url, CENTRAL, CENTRAL.emotions, "aggregator",
               AggregatorStage(engine, 60, connect_redis(central_url), CENTRAL), None),
        worker(connect_redis(central_url), central_url, CENTRAL, CENTRAL.dead, "aggregator-losses",
               LossesStage(engine, 60), None),
    ]  # fmt: skip
    try:
        with running(store_side + central_side):
            publish(20)
            wait_until(lambda: len(history(engine)["applied"]) == len(published), 30)
            assert central.hget(f"{CENTRAL.prefix}edge:last_forward", STORE) is not None

            os.kill(int(central_server.pidfile.read_text()), signal.SIGKILL)  # the WAN link is cut
            cut = time.monotonic()
            publish(RESULTS_MAXLEN // 2)  # 200 results, 180 may wait: the oldest unread are shed, counted

            def shed_at_store() -> int:
                letters: Any = store.xrange(store_names.dead)
                return sum(1 for _, f in letters if DeadLetter.decode(f).loss == "shed")

            wait_until(lambda: shed_at_store() > 0 and store.xlen(store_names.emotions) <= 180, 60)
            waiting = int(store.xlen(store_names.emotions))
            time.sleep(1.0)
            central_server = EmbeddedRedis(server_dir)
            central_server.start()  # the link is back
            restored = time.monotonic()
            caught_up = wait_until(lambda: len(history(engine)["applied"]) == len(published), 60)

            # a crash between the central write and the store's acknowledgement forwards entries again
            again = [EmotionsMessage(FrameKey(STORE, c, EPOCH, s), EPOCH + s * 500, 0, 0) for c in CAMERAS
                     for s in range(5)]  # fmt: skip
            for message in again:
                store.xadd(store_names.emotions, dict[Any, Any](message.encode()))
            wait_until(lambda: _central_drained(central), 30)
            # forwarded results are deleted at the store once acknowledged (nothing is kept there twice)
            wait_until(lambda: store.xlen(store_names.emotions) == 0, 10)
        h = history(engine)
        cameras = per_camera(engine)
        print(
            f"\nedge link cut {restored - cut:.1f} s: published {len(published)}, counted {h['counted']}, "
            f"shed {h['shed']} (waiting at the store at most {waiting}), dead {h['dead']}; caught up "
            f"{caught_up:.1f} s after the link came back; per camera (counted, dead, shed): {cameras}"
        )
        assert_history(h, published)
        for camera in CAMERAS:
            assert sum(cameras[camera]) == seq[camera], camera
        assert h["shed"] > 0 and all(cameras[c][2] > 0 for c in CAMERAS)

        silence = store_silence(central, CENTRAL)
        assert [s.store_id for s in silence] == [STORE] and silence[0].silent_s < 30
        later = store_silence(central, CENTRAL, now=time.time() + 120)
        assert later[0].silent_s >= 120
        shown = collect_status(central_url, None, CENTRAL.prefix)["edge_stores"]
        assert [row["store_id"] for row in shown] == [STORE]
    finally:
        stop.set()
        store.close()
        central.close()
        central_server.stop()


def _central_drained(central: redis.Redis) -> bool:
    groups: Any = central.xinfo_groups(CENTRAL.emotions)
    info: Any = central.xinfo_stream(CENTRAL.emotions)
    group = next(g for g in groups if g["name"] == b"aggregator")
    return int(group["pending"]) == 0 and group["last-delivered-id"] == info["last-generated-id"]


def test_the_forwarder_refuses_to_start_without_a_central_redis(redis_url: str, redis_prefix: str) -> None:
    options = RunOptions(redis_url=redis_url, prefix=redis_prefix, log_level="WARNING")
    with pytest.raises(EdgeConfigError, match="MOODSTREAM_CENTRAL_REDIS_URL"):
        forwarder_workers(options)
    assert max_waiting(options.updated({"results_maxlen": 1000})) == 900


def test_a_forwarder_holds_results_at_the_store_while_the_central_aggregator_lags(
    redis_url: str, redis_prefix: str
) -> None:
    from moodstream.runtime.stages.forwarder import CentralBusyError, ForwarderStage

    client = connect_redis(redis_url)
    local, center = StreamNames(f"{redis_prefix}store:"), StreamNames(f"{redis_prefix}center:")
    client.xgroup_create(center.emotions, "aggregator", id="0", mkstream=True)
    for seq in range(600):  # 600 results the central aggregator has not read yet
        message = EmotionsMessage(FrameKey("other", "cam", EPOCH, seq), EPOCH + seq, 0, 0)
        client.xadd(center.emotions, dict[Any, Any](message.encode()))
    lag = next(g for g in client.xinfo_groups(center.emotions) if g["name"] == b"aggregator").get("lag")
    if lag is None:
        client.close()
        pytest.skip("this Redis (before 7.0) does not report a group's lag; the check then passes")
    forwarder = ForwarderStage(
        client, client, local, center, source=local.emotions, target=center.emotions, group="forwarder",
        central_group="aggregator", central_maxlen=1000, max_waiting=None,
    )  # fmt: skip
    entry = Entry("1-0", EmotionsMessage(FrameKey(STORE, "door", EPOCH, 0), EPOCH, 0, 0).encode())
    counters = StageCounters("forwarder", local)
    with pytest.raises(CentralBusyError, match="lags by 600 entries"):
        forwarder.handle([entry], counters)
    assert client.xlen(center.emotions) == 600  # nothing written while the center is behind
    client.xreadgroup("aggregator", "a1", {center.emotions: ">"}, count=200)  # the center catches up
    forwarder._next_lag_check = 0.0
    forwarder.handle([entry], counters)
    assert client.xlen(center.emotions) == 601
    client.close()


def test_the_edge_user_of_the_center_acl_can_forward_and_nothing_else(
    redis_url: str, redis_prefix: str
) -> None:
    """deploy/edge/center.acl's ``edge`` rules (keys moved to the test's prefix) on a real Redis: the real
    forwarder writes as that user; reading, deleting and trimming the results are refused."""
    from urllib.parse import quote

    from moodstream.runtime.stages.forwarder import ForwarderStage, connect_central

    center = StreamNames(f"{redis_prefix}center:")
    acl = (Path(__file__).resolve().parents[2] / "deploy" / "edge" / "center.acl").read_text(encoding="utf-8")
    words = next(line.split() for line in acl.splitlines() if line.startswith("user edge "))
    rules = [w.replace("~moodstream:", f"~{center.prefix}") for w in words[2:]]
    user, password = f"edge-test-{redis_prefix.split(':')[1]}", "edge@pass:w0rd"
    admin = connect_redis(redis_url)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], reset=True)
    admin.execute_command("ACL", "SETUSER", user, *rules)
    scheme, rest = redis_url.split("://", 1)
    edge = connect_central(f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}")
    local = StreamNames(f"{redis_prefix}store:")
    try:
        forwarder = ForwarderStage(
            admin, edge, local, center, source=local.emotions, target=center.emotions, group="forwarder",
            central_group="aggregator", central_maxlen=1000, max_waiting=None,
        )  # fmt: skip
        message = EmotionsMessage(FrameKey(STORE, "door", EPOCH, 0), EPOCH, 0, 0)
        forwarder.handle([Entry("1-0", message.encode())], StageCounters("forwarder", local))
        assert admin.xlen(center.emotions) == 1
        assert admin.hget(f"{center.prefix}edge:last_forward", STORE) is not None
        for refused in (
            lambda: edge.xrange(center.emotions),
            lambda: edge.delete(center.emotions),
            lambda: edge.xtrim(center.emotions, maxlen=0),
            lambda: edge.hgetall(f"{center.prefix}edge:last_forward"),
            lambda: edge.xadd(f"{redis_prefix}store:frames", {"a": "b"}),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                refused()
    finally:
        edge.close()
        admin.acl_deluser(user)
        admin.close()


def test_moodstream_forward_runs_as_a_process_and_stops_cleanly(redis_url: str, redis_prefix: str) -> None:
    """The CLI command: results written on the store's Redis reach the central prefix; SIGTERM exits 0."""
    import subprocess
    import sys

    store, center = StreamNames(f"{redis_prefix}store:"), StreamNames(f"{redis_prefix}center:")
    client = connect_redis(redis_url)
    for seq in range(5):
        message = EmotionsMessage(FrameKey(STORE, "door", EPOCH, seq), EPOCH + seq, 0, 0)
        client.xadd(store.emotions, dict[Any, Any](message.encode()))
    env = {
        **os.environ,
        "MOODSTREAM_REDIS_URL": redis_url,
        "MOODSTREAM_STREAM_PREFIX": store.prefix,
        "MOODSTREAM_CENTRAL_REDIS_URL": redis_url,  # the same server, another prefix: the center
        "MOODSTREAM_CENTRAL_STREAM_PREFIX": center.prefix,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "moodstream.cli.app", "forward"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: client.xlen(center.emotions) == 5, 60)
        wait_until(lambda: client.xlen(store.emotions) == 0, 10)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        client.close()
    assert process.returncode == 0, stderr
