"""Time bucketing by capture time (UTC) and folding of frames, votes and visits into per-bucket counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moodstream.schemas.messages import ClassifiedVote, DeadLetter, EmotionsMessage, VisitEmotion
from moodstream.schemas.tables import COUNT_COLUMNS, DWELL_BINS, ZONE_COUNT_COLUMNS


class BucketError(ValueError):
    """A bucket width or capture time that cannot be bucketed."""


BucketKey = tuple[datetime, str, str]
"""(bucket_start UTC, store_id, camera_id)."""

ZoneKey = tuple[datetime, str, str, str]
"""(bucket_start UTC, store_id, camera_id, zone)."""


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


def dwell_column(dwell_seconds: float) -> str:
    """The dwell histogram column (``tables.DWELL_BINS``) a visit of this many seconds counts in."""
    for name, low, high in DWELL_BINS:
        if dwell_seconds >= low and (high is None or dwell_seconds < high):
            return name
    raise BucketError(f"dwell time: expected seconds >= 0, got {dwell_seconds}")


def _zeros(columns: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(columns, 0)


@dataclass
class VisitCounts:
    """Visit counters of one row, named as its table's columns: ``counters`` holds every integer column
    (zeros to start; by default those of a (bucket, store, camera, zone) row of ``zone_visits``),
    ``dwell_seconds_sum`` the visits' summed dwell."""

    counters: dict[str, int] = field(default_factory=lambda: _zeros(ZONE_COUNT_COLUMNS))
    dwell_seconds_sum: float = 0.0

    def add_visit(self, visit: VisitEmotion) -> None:
        """Count one ended visit: visits, readable visits and its emotion, dwell sum and histogram."""
        self.counters["visits"] += 1
        if visit.emotion is not None:
            self.counters["readable_visits"] += 1
            self.counters[f"visits_{visit.emotion}"] += 1
        dwell = visit.dwell_ms / 1000
        self.dwell_seconds_sum += dwell
        self.counters[dwell_column(dwell)] += 1

    def column_values(self) -> dict[str, int | float]:
        """Every counter and ``dwell_seconds_sum`` by column name (for the upsert)."""
        return {**self.counters, "dwell_seconds_sum": self.dwell_seconds_sum}


@dataclass
class BucketCounts(VisitCounts):
    """Counters of one (bucket, store, camera), named as the ``emotion_counts`` columns.

    ``counters`` holds every integer column of ``tables.COUNT_COLUMNS``; ``dwell_seconds_sum`` the visits'
    summed dwell; ``last_ms`` the newest capture time of a frame counted here (None: only visits or votes
    landed in this bucket).
    """

    counters: dict[str, int] = field(default_factory=lambda: _zeros(COUNT_COLUMNS))
    last_ms: int | None = None

    def add_frame(self, message: EmotionsMessage) -> None:
        """Count one frame, its detected and its readable faces."""
        self.counters["frames"] += 1
        self.counters["faces"] += message.faces
        self.counters["readable_faces"] += message.readable_faces
        self.last_ms = message.captured_ms if self.last_ms is None else max(self.last_ms, message.captured_ms)

    def add_vote(self, vote: ClassifiedVote) -> None:
        """Count one classified face as its most probable emotion."""
        self.counters[f"faces_{vote.emotion}"] += 1


def fold_emotions(messages: Iterable[EmotionsMessage], bucket_seconds: int) -> dict[BucketKey, BucketCounts]:
    """Sum frames into their (bucket_start, store, camera) rows.

    A frame counts in the bucket of its capture time; each vote (classified face) in the bucket of its
    own capture time; each ended visit in the bucket of its start.
    """
    rows: dict[BucketKey, BucketCounts] = {}

    def row(message: EmotionsMessage, captured_ms: int) -> BucketCounts:
        key = (bucket_start(captured_ms, bucket_seconds), message.key.store_id, message.key.camera_id)
        return rows.setdefault(key, BucketCounts())

    for message in messages:
        row(message, message.captured_ms).add_frame(message)
        for vote in message.votes:
            row(message, vote.captured_ms).add_vote(vote)
        for visit in message.visits:
            row(message, visit.started_ms).add_visit(visit)
    return rows


def fold_zones(messages: Iterable[EmotionsMessage], bucket_seconds: int) -> dict[ZoneKey, VisitCounts]:
    """Sum the ended visits that belong to a zone into (bucket_start, store, camera, zone) rows, each in
    the bucket of its start (as in ``fold_emotions``); visits in no zone are left out."""
    rows: dict[ZoneKey, VisitCounts] = {}
    for message in messages:
        for visit in message.visits:
            if visit.zone is None:
                continue
            start = bucket_start(visit.started_ms, bucket_seconds)
            key = (start, message.key.store_id, message.key.camera_id, visit.zone)
            rows.setdefault(key, VisitCounts()).add_visit(visit)
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
