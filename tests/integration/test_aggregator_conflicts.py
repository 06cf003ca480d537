"""Two aggregators against one real PostgreSQL: overlapping batches in opposite orders do not deadlock, a
deadlock (were one to happen) is reported as a deadlock and retried, not as "cannot connect", and the
prune of frame identities measures their age by the server's clock."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, func, insert, select, text

from moodstream.aggregator.upsert import APPLIED_FRAMES_RETENTION, apply_emotions, prune_applied_frames
from moodstream.runtime.database import TransactionConflictError
from moodstream.runtime.processes import DB_TRANSIENT
from moodstream.runtime.stages.transactions import transaction
from moodstream.schemas import tables
from moodstream.schemas.messages import EmotionsMessage, FrameKey

CAPTURED = 1_772_359_200_000


def frames(seqs: list[int]) -> list[EmotionsMessage]:
    return [EmotionsMessage(FrameKey("s1", "cam", 1, seq), CAPTURED + seq, 0, 0) for seq in seqs]


def in_threads(*bodies: Any) -> list[BaseException]:
    """Run each body in a thread of its own; the exceptions they raised."""
    errors: list[BaseException] = []

    def run(body: Any) -> None:
        try:
            body()
        except BaseException as exc:  # the test reports them
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(body,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_two_aggregators_with_the_same_frames_in_opposite_orders_do_not_deadlock(engine: Engine) -> None:
    """A third transaction holds frames 10 and 29 while one aggregator inserts frames 0..39 and the other
    39..0: unsorted, the first holds 0-9 and the second 30-39 when it rolls back, and each then waits for
    the other (deadlock, whatever the scheduling). Sorted, the second waits behind the first at frame 0."""
    seqs = list(range(40))
    blocker = engine.connect()
    blocker.begin()
    blocker.execute(
        insert(tables.applied_frames),
        [{"store_id": "s1", "camera_id": "cam", "stream_epoch": 1, "seq": s} for s in (10, 29)],
    )

    def aggregator(order: list[int]) -> None:
        with transaction(engine) as conn:
            apply_emotions(conn, frames(order), 60)

    def release() -> None:
        time.sleep(0.5)  # both aggregators wait on the blocker's rows by now
        blocker.rollback()

    errors = in_threads(lambda: aggregator(seqs), lambda: aggregator(seqs[::-1]), release)
    blocker.close()
    assert errors == [], f"an aggregator failed: {errors!r}"
    with engine.connect() as conn:
        counted = conn.scalar(select(func.sum(tables.emotion_counts.c.frames)))
    assert counted == len(seqs), "each frame counted once"


def test_a_deadlock_is_reported_as_a_deadlock_and_retried(engine: Engine) -> None:
    barrier = threading.Barrier(2, timeout=10)

    def locker(first: int, second: int) -> None:
        with transaction(engine) as conn:
            conn.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
            barrier.wait()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})

    errors = in_threads(lambda: locker(1, 2), lambda: locker(2, 1))
    assert len(errors) == 1, errors
    assert isinstance(errors[0], TransactionConflictError)
    assert str(errors[0]).startswith("deadlock on PostgreSQL at ")
    assert "cannot connect" not in str(errors[0])
    assert TransactionConflictError in DB_TRANSIENT, "the worker retries the batch"


def test_the_prune_cutoff_is_the_servers_clock_not_the_applications(engine: Engine) -> None:
    """Identities stamped by the server just inside the retention stay, however late the application's
    clock reads: here the application's clock runs 2 s ahead of the transaction's ``now()``."""
    table = tables.applied_frames
    stamped = text(
        f"INSERT INTO {table.name} (store_id, camera_id, stream_epoch, seq, applied_at) "
        "VALUES ('s1', 'cam', 1, :seq, now() - make_interval(secs => :age))"
    )
    retention_s = APPLIED_FRAMES_RETENTION.total_seconds()
    with engine.begin() as conn:
        conn.execute(stamped, {"seq": 0, "age": retention_s + 1})  # 1 s past the retention
        conn.execute(stamped, {"seq": 1, "age": retention_s - 1})  # 1 s inside it
        time.sleep(2.0)  # the server's now() stays at the transaction's start; the application's moves on
        pruned = prune_applied_frames(conn)
        left = conn.scalars(select(table.c.seq)).all()
    assert (pruned, left) == (1, [1])
