"""Losses stage adapter: ``dead`` -> ``frame_losses``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from moodstream.aggregator import apply_losses
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.transactions import transaction
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import DeadLetter, MessageError

log = logging.getLogger(__name__)


class LossesStage:
    """``dead`` -> ``frame_losses``: counts shed and dead frames per bucket (each frame once)."""

    stage = "losses"

    def __init__(self, engine: Engine, bucket_seconds: int) -> None:
        self.engine = engine
        self.bucket_seconds = bucket_seconds

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Commit loss counts of readable dead letters; unreadable ones are skipped with a log line."""
        letters: list[DeadLetter] = []
        for entry in entries:
            try:
                letters.append(DeadLetter.decode(entry.fields))
            except MessageError as exc:
                log.warning("losses: skipping unreadable dead letter %s: %s", entry.entry_id, exc)
        with transaction(self.engine) as conn:
            counted = apply_losses(conn, letters, self.bucket_seconds)
        for letter in counted:
            if letter.key is not None:
                counters.add(letter.key.store_id, letter.key.camera_id, letter.loss)
        return BatchResult()
