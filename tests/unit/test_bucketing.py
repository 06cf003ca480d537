"""Bucketing by capture time in UTC, and folding frames into per-bucket rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from moodstream.aggregator.buckets import BucketError, bucket_start, fold_emotions, fold_losses
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import ClassifiedFace, DeadLetter, EmotionsMessage, FrameKey


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


def _frame(camera: str, seq: int, captured: int, emotions: list[str]) -> EmotionsMessage:
    faces = []
    for name in emotions:
        probs = [0.0] * len(EMOTIONS)
        probs[EMOTIONS.index(name)] = 1.0
        faces.append(ClassifiedFace((0, 0, 5, 5), 0.9, tuple(probs)))
    return EmotionsMessage(FrameKey("s1", camera, 1, seq), captured, tuple(faces))


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
    first = rows[(bucket_start(base, 60), "s1", "a")]
    assert (first.frames, first.faces, first.emotions["happy"], first.emotions["sad"]) == (2, 2, 1, 1)
    assert first.last_ms == base + 59_999
    second = rows[(bucket_start(base + 60_000, 60), "s1", "a")]
    assert (second.frames, second.faces, second.emotions["neutral"]) == (1, 1, 1)
    assert rows[(bucket_start(base, 60), "s1", "b")].frames == 1
    assert len(rows) == 3


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
