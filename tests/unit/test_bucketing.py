"""Bucketing by capture time in UTC, and folding frames into per-bucket rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from moodstream.aggregator.buckets import BucketError, bucket_start, dwell_column, fold_emotions, fold_losses
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import ClassifiedVote, DeadLetter, EmotionsMessage, FrameKey, VisitEmotion


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("captured", "width", "expected"),
    [
        ("2026-03-01T10:15:42.999+00:00", 60, "2026-03-01T10:15:00+00:00"),
        ("2026-03-01T10:15:00.000+00:00", 60, "2026-03-01T10:15:00+00:00"),
        ("2026-03-01T10:14:59.999+00:00", 60, "2026-03-01T10:14:00+00:00"),
        ("2026-03-01T10:14:59.999+00:00", 900, "2026-03-01T10:00:00+00:00"),
        ("2026-03-01T10:14:59.999+00:00", 10, "2026-03-01T10:14:50+00:00"),
        # a store in UTC+7 at 00:00:30 local is 17:00:30 UTC the previous day: bucketed in UTC
        ("2026-03-02T00:00:30+07:00", 60, "2026-03-01T17:00:00+00:00"),
    ],
)
def test_bucket_start_floors_capture_time_in_utc(captured: str, width: int, expected: str) -> None:
    start = bucket_start(_ms(captured), width)
    assert start == datetime.fromisoformat(expected)
    assert start.tzinfo == UTC


@pytest.mark.parametrize(
    ("captured", "width", "message"),
    [(0, 0, "bucket width: expected a positive"), (-5, 60, "capture time: expected epoch milliseconds")],
)
def test_bucket_start_rejects_bad_input(captured: int, width: int, message: str) -> None:
    with pytest.raises(BucketError, match=message):
        bucket_start(captured, width)


def _probs(name: str) -> tuple[float, ...]:
    return tuple(1.0 if e == name else 0.0 for e in EMOTIONS)


def _frame(
    camera: str, seq: int, captured: int, emotions: list[str], visits: tuple[VisitEmotion, ...] = ()
) -> EmotionsMessage:
    votes = tuple(ClassifiedVote(captured, _probs(name)) for name in emotions)
    return EmotionsMessage(
        FrameKey("s1", camera, 1, seq), captured, len(emotions) + 2, len(emotions), votes, visits
    )


def test_fold_counts_frames_faces_and_emotions_per_bucket_and_camera() -> None:
    base = _ms("2026-03-01T10:00:00+00:00")
    rows = fold_emotions(
        [
            _frame("a", 0, base + 1_000, ["happy", "sad"]),
            _frame("a", 1, base + 59_999, []),
            _frame("a", 2, base + 60_000, ["neutral"]),
            _frame("b", 0, base + 2_000, ["happy"]),
        ],
        60,
    )
    first = rows[(bucket_start(base, 60), "s1", "a")].counters
    assert (first["frames"], first["faces"], first["readable_faces"]) == (2, 6, 2)
    assert (first["faces_happy"], first["faces_sad"], first["visits"]) == (1, 1, 0)
    assert rows[(bucket_start(base, 60), "s1", "a")].last_ms == base + 59_999
    second = rows[(bucket_start(base + 60_000, 60), "s1", "a")].counters
    assert (second["frames"], second["faces"], second["faces_neutral"]) == (1, 3, 1)
    assert rows[(bucket_start(base, 60), "s1", "b")].counters["frames"] == 1
    assert len(rows) == 3


def test_fold_counts_each_visit_in_the_bucket_of_its_start() -> None:
    base = _ms("2026-03-01T10:00:00+00:00")
    visits = (
        VisitEmotion(base - 5_000, base + 40_000, 20, 4, _probs("happy")),  # started 09:59:55
        VisitEmotion(base + 1_000, base + 2_000, 2, 0, None),  # unreadable
    )
    rows = fold_emotions([_frame("a", 0, base + 61_000, [], visits)], 60)
    earlier = rows[(bucket_start(base - 5_000, 60), "s1", "a")]
    assert earlier.counters["visits"] == earlier.counters["visits_happy"] == 1
    assert earlier.counters["dwell_30_120s"] == 1 and earlier.dwell_seconds_sum == 45.0
    assert earlier.counters["frames"] == 0 and earlier.last_ms is None
    start = rows[(bucket_start(base, 60), "s1", "a")]
    assert (start.counters["visits"], start.counters["readable_visits"], start.counters["dwell_lt_10s"]) == (
        1,
        0,
        1,
    )
    assert sum(start.counters[f"visits_{e}"] for e in EMOTIONS) == 0
    assert rows[(bucket_start(base + 61_000, 60), "s1", "a")].counters["frames"] == 1


@pytest.mark.parametrize(
    ("seconds", "column"),
    [
        (0.0, "dwell_lt_10s"),
        (9.999, "dwell_lt_10s"),
        (10.0, "dwell_10_30s"),
        (119.9, "dwell_30_120s"),
        (120.0, "dwell_120_600s"),
        (600.0, "dwell_ge_600s"),
        (86_400.0, "dwell_ge_600s"),
    ],
)
def test_dwell_column(seconds: float, column: str) -> None:
    assert dwell_column(seconds) == column


def test_dwell_column_rejects_negative() -> None:
    with pytest.raises(BucketError, match="dwell time"):
        dwell_column(-1.0)


def test_fold_losses_separates_shed_and_dead_and_skips_unknown_frames() -> None:
    def letter(loss: str, key: FrameKey | None) -> DeadLetter:
        return DeadLetter("f", "1-0", "x", "r", 1, 0, loss, key, 0 if key else None)

    rows = fold_losses(
        [
            letter("shed", FrameKey("s1", "a", 1, 0)),
            letter("dead", FrameKey("s1", "a", 1, 1)),
            letter("dead", None),
        ],
        60,
    )
    (only,) = rows.values()
    assert (only.shed, only.dead) == (1, 1)
