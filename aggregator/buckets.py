"""Time bucketing of frames by capture time (UTC) and folding of frames into per-bucket counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import DeadLetter, EmotionsMessage


class BucketError(ValueError):
    """A bucket width or capture time that cannot be bucketed."""


BucketKey = tuple[datetime, str, str]
"""(bucket_start UTC, store_id, camera_id)."""


def bucket_start(captured_ms: int, bucket_seconds: int) -> datetime:
    """UTC start of the bucket holding a capture time (epoch ms): floor to a multiple of the width.

    Buckets are aligned to the Unix epoch, so 60 s buckets start on whole UTC minutes and 3600 s
    buckets on whole UTC hours whatever the store's time zone.
    """
    if bucket_seconds <= 0:
        raise BucketError(f"bucket width: expected a positive number of seconds, got {bucket_seconds}")
    if captured_ms < 0:
        raise BucketError(f"capture time: expected epoch milliseconds >= 0, got {captured_ms}")
    width_ms = bucket_seconds * 1000
    return datetime.fromtimestamp((captured_ms // width_ms) * width_ms / 1000, tz=UTC)


@dataclass
class BucketCounts:
    """Counts of one (bucket, store, camera): frames, faces, faces per emotion, newest capture time."""

    frames: int = 0
    faces: int = 0
    emotions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, 0))
    last_ms: int = 0

    def add_frame(self, message: EmotionsMessage) -> None:
        """Count one frame and its faces (each face as its most probable emotion)."""
        self.frames += 1
        self.faces += len(message.faces)
        for name, count in message.emotion_counts().items():
            self.emotions[name] += count
        self.last_ms = max(self.last_ms, message.captured_ms)


def fold_emotions(messages: Iterable[EmotionsMessage], bucket_seconds: int) -> dict[BucketKey, BucketCounts]:
    """Sum frames into their (bucket_start, store, camera) rows."""
    rows: dict[BucketKey, BucketCounts] = {}
    for message in messages:
        key = (bucket_start(message.captured_ms, bucket_seconds), message.key.store_id, message.key.camera_id)
        rows.setdefault(key, BucketCounts()).add_frame(message)
    return rows


@dataclass
class LossCounts:
    """Frames lost in one (bucket, store, camera): shed by caps, given up on (dead)."""

    shed: int = 0
    dead: int = 0


def fold_losses(letters: Iterable[DeadLetter], bucket_seconds: int) -> dict[BucketKey, LossCounts]:
    """Sum dead letters that name their frame into (bucket_start, store, camera) loss rows."""
    rows: dict[BucketKey, LossCounts] = {}
    for letter in letters:
        if letter.key is None or letter.captured_ms is None:
            continue
        key = (bucket_start(letter.captured_ms, bucket_seconds), letter.key.store_id, letter.key.camera_id)
        row = rows.setdefault(key, LossCounts())
        if letter.loss == "shed":
            row.shed += 1
        else:
            row.dead += 1
    return rows
