"""The consumer loop against a real Redis: outputs + XACK, reclaiming, dead letters, outages, stopping,
entries held by a stateful handler and released by a later batch or tick."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.worker import BatchResult, Entry, StreamWorker, WorkerConfig
from moodstream.schemas.messages import DeadLetter, EmotionsMessage, FrameKey, FrameMessage, MessageError
from tests.integration.helpers import run_worker_until, xrange_all

FAST = WorkerConfig(batch_size=4, block_ms=50, claim_idle_ms=200, claim_interval_s=0.1, heartbeat_s=0.5)


class ToEmptyEmotions:
    """A minimal real stage: every frame becomes an emotions entry with no face; ``poison`` seqs raise."""

    stage = "detector"

    def __init__(self, poison: frozenset[int] = frozenset()) -> None:
        self.poison = poison
        self.calls = 0

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        self.calls += 1
        result = BatchResult()
        for entry in entries:
            try:
                frame = FrameMessage.decode(entry.fields)
            except MessageError as exc:
                result.dead.append((entry, f"malformed: {exc}"))
                continue
            if frame.key.seq in self.poison:
                raise RuntimeError(f"cannot handle seq {frame.key.seq}")
            result.outputs.append(EmotionsMessage(frame.key, frame.captured_ms, 0, 0).encode())
            counters.add(frame.key.store_id, frame.key.camera_id, "frames_out")
        return result


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect_redis(redis_url)
    yield c
    c.close()


def publish(client: redis.Redis, names: StreamNames, seqs: range) -> None:
    for seq in seqs:
        fields: Any = FrameMessage(FrameKey("s1", "cam", 7, seq), 1000 + seq, b"jpeg").encode()
        client.xadd(names.frames, fields)


def make_worker(
    client: redis.Redis, redis_url: str, names: StreamNames, handler: Any, config: WorkerConfig = FAST
) -> StreamWorker:
    return StreamWorker(
        client, redis_url, names, stream=names.frames, group="detector", handler=handler,
        output_stream=names.emotions, config=config,
    )  # fmt: skip


def run_until(worker: StreamWorker, done: Callable[[], bool], timeout: float = 20.0) -> None:
    assert run_worker_until(worker, done, timeout), "worker did not stop"
    assert done(), "condition not reached in time"


def output_seqs(client: redis.Redis, names: StreamNames) -> list[int]:
    return [EmotionsMessage.decode(f).key.seq for _, f in xrange_all(client, names.emotions)]


def pending(client: redis.Redis, names: StreamNames) -> int:
    return int(client.xpending(names.frames, "detector")["pending"])


def test_one_output_per_entry_and_everything_acknowledged(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(10))
    worker = make_worker(client, redis_url, names, ToEmptyEmotions())
    run_until(worker, lambda: len(output_seqs(client, names)) == 10)
    assert sorted(output_seqs(client, names)) == list(range(10))
    assert pending(client, names) == 0
    assert client.hget(names.stats("detector"), "s1/cam:frames_out") == b"10"


def test_malformed_entry_goes_to_dead_and_the_rest_flows(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(3))
    bad_id: Any = client.xadd(
        names.frames, {"v": "2", "type": "frame", "store": "s1", "camera": "cam", "seq": "x"}
    )
    publish(client, names, range(3, 6))
    worker = make_worker(client, redis_url, names, ToEmptyEmotions())
    run_until(worker, lambda: len(output_seqs(client, names)) == 6 and client.xlen(names.dead) == 1)
    (_, fields), *_ = xrange_all(client, names.dead)
    letter = DeadLetter.decode(fields)
    assert letter.entry_id == bad_id.decode() and letter.stage == "detector"
    assert "field 'epoch': expected it to be present" in letter.reason
    assert pending(client, names) == 0


def test_entries_of_a_dead_consumer_are_reclaimed(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(6))
    client.xgroup_create(names.frames, "detector", id="0")
    client.xreadgroup("detector", "crashed-worker", {names.frames: ">"}, count=6)  # read, never acknowledged
    assert pending(client, names) == 6
    time.sleep(0.3)  # longer than claim_idle_ms
    worker = make_worker(client, redis_url, names, ToEmptyEmotions())
    run_until(worker, lambda: len(output_seqs(client, names)) == 6)
    assert sorted(output_seqs(client, names)) == list(range(6))
    assert pending(client, names) == 0


def test_entry_failing_too_often_goes_to_dead_with_its_reason(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(5))
    config = FAST.model_copy(update={"max_deliveries": 2})
    worker = make_worker(client, redis_url, names, ToEmptyEmotions(poison=frozenset({2})), config)
    run_until(worker, lambda: client.xlen(names.dead) == 1 and pending(client, names) == 0)
    assert sorted(output_seqs(client, names)) == [0, 1, 3, 4]
    letter = DeadLetter.decode(xrange_all(client, names.dead)[0][1])
    assert letter.key == FrameKey("s1", "cam", 7, 2) and letter.deliveries == 3
    assert "delivered 3 times (limit 2)" in letter.reason and "cannot handle seq 2" in letter.reason


def test_unreachable_redis_waits_with_a_redacted_log_line_and_stops_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "redis://worker:Sup3r-Secret@127.0.0.1:1/0"
    names = StreamNames("moodstream-test-unreachable:")
    worker = make_worker(connect_redis(url), url, names, ToEmptyEmotions())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    with caplog.at_level(logging.WARNING):
        thread.start()
        deadline = time.monotonic() + 10
        while "unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert "Redis at redis://worker:***@127.0.0.1:1/0 unreachable" in caplog.text
    assert "Sup3r-Secret" not in caplog.text


def test_stop_finishes_the_batch_in_hand(client: redis.Redis, redis_url: str, redis_prefix: str) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(4))
    stop = threading.Event()

    class SlowStage(ToEmptyEmotions):
        def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
            stop.set()  # the stop arrives while this batch is being handled
            time.sleep(0.3)
            return super().handle(entries, counters)

    worker = make_worker(client, redis_url, names, SlowStage())
    worker.run(stop)
    assert sorted(output_seqs(client, names)) == [0, 1, 2, 3]
    assert pending(client, names) == 0


def test_a_stream_deleted_under_the_worker_is_recreated_and_consumption_goes_on(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(3))
    worker = make_worker(client, redis_url, names, ToEmptyEmotions())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(output_seqs(client, names)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        client.delete(names.frames)  # e.g. a Redis restarted without its data
        time.sleep(0.3)
        publish(client, names, range(3, 6))
        while len(output_seqs(client, names)) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert sorted(output_seqs(client, names)) == list(range(6))


class HoldUntilTick:
    """A stateful stage like the tracker: holds every entry, releases those held ``hold_s`` on a tick."""

    stage = "tracker"

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.waiting: dict[str, tuple[float, FrameMessage]] = {}
        self.seen: list[int] = []
        self.ticks = 0

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        for entry in entries:
            frame = FrameMessage.decode(entry.fields)
            self.seen.append(frame.key.seq)
            self.waiting[entry.entry_id] = (time.time(), frame)
        return BatchResult(held=[e.entry_id for e in entries])

    def tick(self, now: float, counters: StageCounters) -> BatchResult:
        self.ticks += 1
        due = [i for i, (since, _) in self.waiting.items() if now - since >= self.hold_s]
        result = BatchResult(released=due)
        for entry_id in due:
            frame = self.waiting.pop(entry_id)[1]
            result.outputs.append(EmotionsMessage(frame.key, frame.captured_ms, 0, 0).encode())
        return result


def deliveries(client: redis.Redis, names: StreamNames) -> list[int]:
    rows: Any = client.xpending_range(names.frames, "detector", min="-", max="+", count=100)
    return [int(r["times_delivered"]) for r in rows]


def test_held_entries_stay_pending_until_released_and_are_not_reclaimed_meanwhile(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(5))
    handler = HoldUntilTick(hold_s=1.0)  # five times claim_idle_ms: reclaim passes run meanwhile
    worker = make_worker(client, redis_url, names, handler)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(handler.seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.6)
        assert pending(client, names) == 5 and output_seqs(client, names) == []
        assert deliveries(client, names) == [1] * 5  # touched, never re-delivered
        while len(output_seqs(client, names)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert sorted(output_seqs(client, names)) == list(range(5))
    assert sorted(handler.seen) == list(range(5)), "a held entry was handed to the handler twice"
    assert pending(client, names) == 0


def test_tick_runs_while_no_entry_arrives(client: redis.Redis, redis_url: str, redis_prefix: str) -> None:
    names = StreamNames(redis_prefix)
    handler = HoldUntilTick(hold_s=0.0)
    run_until(make_worker(client, redis_url, names, handler), lambda: handler.ticks >= 5, timeout=10)


def test_a_new_worker_takes_over_the_held_entries_of_a_dead_one_first(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publish(client, names, range(4))
    first = HoldUntilTick(hold_s=3600.0)  # never releases: its entries are pending when it "dies"
    run_until(make_worker(client, redis_url, names, first), lambda: len(first.seen) == 4)
    assert pending(client, names) == 4
    publish(client, names, range(4, 6))
    config = FAST.model_copy(update={"claim_all_on_start": True, "claim_idle_ms": 60_000})
    second = HoldUntilTick(hold_s=0.0)
    run_until(
        make_worker(client, redis_url, names, second, config), lambda: len(output_seqs(client, names)) == 6
    )
    assert second.seen == [0, 1, 2, 3, 4, 5], "the predecessor's entries must come before new ones"
    assert pending(client, names) == 0
