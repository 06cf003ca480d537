"""Aggregator against real PostgreSQL (and Redis): exact, idempotent counts per capture-time bucket."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update

from moodstream.aggregator.upsert import APPLIED_FRAMES_RETENTION, apply_emotions, apply_losses
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.database import create_database_engine
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.processes import DB_TRANSIENT
from moodstream.runtime.stages import AggregatorStage, LossesStage
from moodstream.runtime.worker import StreamWorker, WorkerConfig
from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import (
    ClassifiedVote,
    DeadLetter,
    EmotionsMessage,
    FrameKey,
    VisitEmotion,
)
from tests.integration.helpers import run_worker_until

BASE_MS = int(datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
FAST = WorkerConfig(batch_size=8, block_ms=50, claim_idle_ms=200, claim_interval_s=0.1)


def probs_of(emotion: str) -> tuple[float, ...]:
    return tuple(1.0 if e == emotion else 0.0 for e in EMOTIONS)


def frame(
    camera: str,
    seq: int,
    offset_s: float,
    emotions: list[str],
    epoch: int = 1,
    visits: tuple[VisitEmotion, ...] = (),
) -> EmotionsMessage:
    """A frame with one detected face per emotion plus one unreadable face, each readable one classified."""
    captured = BASE_MS + int(offset_s * 1000)
    votes = tuple(ClassifiedVote(captured, probs_of(name)) for name in emotions)
    faces = len(emotions) + 1
    return EmotionsMessage(FrameKey("s1", camera, epoch, seq), captured, faces, len(emotions), votes, visits)


def visit(start_s: float, end_s: float, emotion: str | None, faces: int = 3) -> VisitEmotion:
    probs = None if emotion is None else probs_of(emotion)
    readable = 0 if emotion is None else 1
    return VisitEmotion(BASE_MS + int(start_s * 1000), BASE_MS + int(end_s * 1000), faces, readable, probs)


def counts(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    t = tables.emotion_counts
    with engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.bucket_start, t.c.camera_id)).mappings().all()
    return {(r["bucket_start"].strftime("%H:%M"), r["camera_id"]): dict(r) for r in rows}


MESSAGES = [
    frame("a", 0, 1, ["happy", "happy", "sad"]),
    frame("a", 1, 30, [], visits=(visit(1, 25, "happy"), visit(2, 29, None))),
    frame("a", 2, 61, ["angry"]),
    frame("b", 0, 5, ["neutral"]),
    frame("a", 0, 1, ["happy", "happy", "sad"], epoch=2),  # a restarted ingest: a new frame
]


def test_counts_per_bucket_and_camera(engine: Engine) -> None:
    with engine.begin() as conn:
        assert apply_emotions(conn, MESSAGES, 60) == MESSAGES
    rows = counts(engine)
    assert set(rows) == {("10:00", "a"), ("10:01", "a"), ("10:00", "b")}
    first = rows[("10:00", "a")]
    assert (first["frames"], first["faces"], first["readable_faces"]) == (3, 9, 6)
    assert (first["faces_happy"], first["faces_sad"]) == (4, 2)
    assert (first["visits"], first["readable_visits"], first["visits_happy"]) == (2, 1, 1)
    assert (first["dwell_seconds_sum"], first["dwell_10_30s"]) == (24.0 + 27.0, 2)
    assert first["bucket_seconds"] == 60
    assert first["last_frame_at"] == datetime.fromtimestamp((BASE_MS + 30_000) / 1000, UTC)
    assert (rows[("10:01", "a")]["frames"], rows[("10:01", "a")]["faces_angry"]) == (1, 1)
    assert rows[("10:01", "a")]["visits"] == 0


def test_visits_count_in_the_bucket_of_their_start_and_votes_in_their_own(engine: Engine) -> None:
    # a frame at 10:02:05 ends a visit that started at 09:58:50; its two votes were captured at 09:59:00
    # and 10:00:30
    long_visit = VisitEmotion(BASE_MS - 70_000, BASE_MS + 120_000, 40, 12, probs_of("happy"))
    votes = (
        ClassifiedVote(BASE_MS - 60_000, probs_of("happy")),
        ClassifiedVote(BASE_MS + 30_000, probs_of("sad")),
    )
    message = EmotionsMessage(FrameKey("s1", "a", 1, 9), BASE_MS + 125_000, 2, 1, votes, (long_visit,))
    with engine.begin() as conn:
        apply_emotions(conn, [message], 60)
    rows = counts(engine)
    assert set(rows) == {("09:58", "a"), ("09:59", "a"), ("10:00", "a"), ("10:02", "a")}
    started = rows[("09:58", "a")]
    assert (started["visits"], started["visits_happy"], started["dwell_120_600s"]) == (1, 1, 1)
    assert started["dwell_seconds_sum"] == 190.0 and started["frames"] == 0
    assert started["last_frame_at"] is None  # no frame counted in this bucket
    assert (rows[("09:59", "a")]["faces_happy"], rows[("10:00", "a")]["faces_sad"]) == (1, 1)
    assert (rows[("10:02", "a")]["frames"], rows[("10:02", "a")]["visits"]) == (1, 0)


def test_dwell_histogram_bins(engine: Engine) -> None:
    durations = [0, 9.999, 10, 29.5, 30, 119, 120, 599.9, 600, 3600]
    visits = tuple(visit(0, d, "neutral") for d in durations)
    with engine.begin() as conn:
        apply_emotions(conn, [frame("a", 0, 3700, [], visits=visits)], 3600)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM emotion_counts_v WHERE visits > 0")).mappings().one()
    bins = [
        row[c] for c in ("dwell_lt_10s", "dwell_10_30s", "dwell_30_120s", "dwell_120_600s", "dwell_ge_600s")
    ]
    assert bins == [2, 2, 2, 2, 2]
    assert row["dwell_seconds_mean"] == pytest.approx(sum(durations) / len(durations), abs=1e-3)


def test_redelivery_never_counts_a_visit_twice(engine: Engine) -> None:
    carrier = frame("a", 7, 40, ["happy"], visits=(visit(3, 38, "happy"), visit(5, 39, "sad")))
    with engine.begin() as conn:
        assert apply_emotions(conn, [carrier, carrier], 60) == [carrier]  # in-batch duplicate
    for _ in range(2):  # the same entry delivered again later (a retried classifier output)
        with engine.begin() as conn:
            assert apply_emotions(conn, [carrier], 60) == []
    (row,) = counts(engine).values()
    assert (row["visits"], row["readable_visits"], row["visits_happy"], row["visits_sad"]) == (2, 2, 1, 1)
    assert (row["frames"], row["faces_happy"], row["dwell_seconds_sum"]) == (1, 1, 35.0 + 34.0)


def test_unreadable_visits_are_counted_without_an_emotion_or_a_negative_index(engine: Engine) -> None:
    unreadable = tuple(visit(1, 20 + i, None, faces=30) for i in range(3))
    with engine.begin() as conn:
        apply_emotions(conn, [frame("a", 0, 30, [], visits=unreadable)], 60)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM emotion_counts_v")).mappings().one()
    assert (row["visits"], row["readable_visits"], row["classified_faces"]) == (3, 0, 0)
    assert sum(row[f"visits_{e}"] for e in EMOTIONS) == 0
    assert row["visit_satisfaction_index"] is None and row["face_satisfaction_index"] is None


def test_redelivered_frames_are_not_counted_twice(engine: Engine) -> None:
    with engine.begin() as conn:
        apply_emotions(conn, MESSAGES[:3], 60)
    before = counts(engine)
    with engine.begin() as conn:  # the whole batch again, plus one new frame and an in-batch duplicate
        new = apply_emotions(conn, [*MESSAGES, MESSAGES[3]], 60)
    assert new == MESSAGES[3:]
    after = counts(engine)
    assert after[("10:00", "a")]["frames"] == before[("10:00", "a")]["frames"] + 1
    assert after[("10:01", "a")] == {
        **before[("10:01", "a")],
        "updated_at": after[("10:01", "a")]["updated_at"],
    }
    assert after[("10:00", "b")]["frames"] == 1


def test_a_failed_transaction_counts_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        apply_emotions(conn, MESSAGES, 60)
        raise RuntimeError("crash before commit")
    assert counts(engine) == {}
    with engine.begin() as conn:  # redelivery after the crash counts everything once
        assert len(apply_emotions(conn, MESSAGES, 60)) == 5


def test_losses_counted_once_and_never_on_top_of_a_counted_frame(engine: Engine) -> None:
    def letter(seq: int, loss: str) -> DeadLetter:
        key = FrameKey("s1", "a", 1, seq)
        return DeadLetter("f", f"{seq}-0", "detector", "r", 1, 0, loss, key, BASE_MS + 1000)

    with engine.begin() as conn:
        apply_emotions(conn, [frame("a", 0, 1, [])], 60)
        letters = [letter(0, "dead"), letter(1, "dead"), letter(2, "shed"), letter(1, "dead")]
        counted = apply_losses(conn, letters, 60)
    assert [c.key.seq for c in counted if c.key] == [1, 2]  # seq 0 was counted as analysed already
    with engine.connect() as conn:
        (row,) = conn.execute(select(tables.frame_losses)).mappings().all()
    assert (row["dead"], row["shed"]) == (1, 1)


def _run_worker(worker: StreamWorker, until: Any, timeout: float = 20) -> None:
    run_worker_until(worker, until, timeout, poll=0.05)
    assert until()


def test_same_emotion_entries_delivered_twice_through_the_stream_leave_counts_unchanged(
    engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    for message in MESSAGES:
        client.xadd(names.emotions, dict[Any, Any](message.encode()))
    stage = AggregatorStage(engine, 60, client, names)

    def worker() -> StreamWorker:
        return StreamWorker(
            client, redis_url, names, stream=names.emotions, group="aggregator", handler=stage,
            output_stream=None, config=FAST, transient=DB_TRANSIENT,
        )  # fmt: skip

    def acked() -> bool:
        info: Any = client.xinfo_groups(names.emotions)
        return (
            bool(info)
            and info[0]["pending"] == 0
            and info[0]["last-delivered-id"] == client.xinfo_stream(names.emotions)["last-generated-id"]
        )

    _run_worker(worker(), acked)
    first = counts(engine)
    for message in MESSAGES:  # the same entries delivered again (e.g. a classifier retried its output)
        client.xadd(names.emotions, dict[Any, Any](message.encode()))
    _run_worker(worker(), acked)
    second = counts(engine)
    assert {k: v["frames"] for k, v in second.items()} == {k: v["frames"] for k, v in first.items()}
    assert {k: v["faces_happy"] for k, v in second.items()} == {k: v["faces_happy"] for k, v in first.items()}
    assert {k: v["visits"] for k, v in second.items()} == {k: v["visits"] for k, v in first.items()}
    assert client.llen(names.latency) == len(MESSAGES)  # latencies of frames counted, once each
    raw: Any = client.hgetall(names.stats("aggregator"))
    assert sum(int(v) for k, v in raw.items() if k.endswith(b":frames_in")) == len(MESSAGES)
    client.close()


def test_dead_stream_feeds_frame_losses(engine: Engine, redis_url: str, redis_prefix: str) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    for seq, loss in enumerate(["dead", "shed", "shed"]):
        key = FrameKey("s1", "cam", 1, seq)
        letter = DeadLetter(names.frames, f"{seq}-1", "detector", "why", 1, 0, loss, key, BASE_MS)
        client.xadd(names.dead, dict[Any, Any](letter.encode()))
    worker = StreamWorker(
        client, redis_url, names, stream=names.dead, group="aggregator-losses",
        handler=LossesStage(engine, 60), output_stream=None, config=FAST,
    )  # fmt: skip

    def loss_row() -> tuple[int, int] | None:
        with engine.connect() as conn:
            row = conn.execute(select(tables.frame_losses.c.dead, tables.frame_losses.c.shed)).first()
        return None if row is None else (row[0], row[1])

    _run_worker(worker, lambda: loss_row() == (1, 2))
    client.close()


def test_unreachable_postgres_makes_the_aggregator_wait_without_acknowledging(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    client.xadd(names.emotions, dict[Any, Any](MESSAGES[0].encode()))
    engine = create_database_engine("postgresql://writer:Db-Secret-9@127.0.0.1:1/nowhere", check=False)
    stage = AggregatorStage(engine, 60, client, names)
    worker = StreamWorker(
        client, redis_url, names, stream=names.emotions, group="aggregator", handler=stage,
        output_stream=None, config=FAST, transient=DB_TRANSIENT,
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    with caplog.at_level("WARNING"):
        thread.start()
        deadline = time.monotonic() + 15
        while "unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        info: Any = client.xinfo_groups(names.emotions)
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/nowhere" in caplog.text
    assert "Db-Secret-9" not in caplog.text
    assert info[0]["pending"] == 1  # held, not acknowledged, not dead
    assert client.xlen(names.dead) == 0
    client.close()
    engine.dispose()


def test_the_aggregator_forgets_frame_identities_older_than_the_retention(
    engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    t = tables.applied_frames
    old = datetime.now(UTC) - APPLIED_FRAMES_RETENTION - timedelta(hours=1)
    with engine.begin() as conn:
        apply_emotions(conn, MESSAGES[:2], 60)  # two frames counted now, in one bucket row
        conn.execute(insert(t).values(store_id="s1", camera_id="z", stream_epoch=1, seq=0))
        conn.execute(update(t).where(t.c.camera_id == "z").values(applied_at=old))
    names = StreamNames(redis_prefix)
    stage = AggregatorStage(engine, 60, connect_redis(redis_url), names)
    stage.handle([], StageCounters("aggregator", names))
    with engine.connect() as conn:
        left = {(r.camera_id, r.seq) for r in conn.execute(select(t.c.camera_id, t.c.seq))}
        assert conn.execute(select(func.count()).select_from(tables.emotion_counts)).scalar_one() == 1
    assert left == {("a", 0), ("a", 1)}, "the old identity is pruned, the recent ones are kept"
