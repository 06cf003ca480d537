"""Aggregator stage adapter: ``emotions`` -> PostgreSQL counts, the hourly prune of frame identities, and
the capture-to-commit latencies written to Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis
from sqlalchemy import Engine

from moodstream.aggregator import apply_emotions, prune_applied_frames
from moodstream.common.streams import StreamNames
from moodstream.runtime.metrics import PipelineMetrics, StageCounters
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.stages.transactions import transaction
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import EmotionsMessage

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 20_000
"""Capture-to-commit latencies kept in Redis (newest first) for status and benchmarks."""
PRUNE_INTERVAL_S = 3600.0
"""How often the aggregator deletes frame identities older than the retention from applied_frames."""


class AggregatorStage:
    """``emotions`` -> PostgreSQL: one transaction per batch, redelivered frames counted once."""

    stage = "aggregator"

    def __init__(
        self,
        engine: Engine,
        bucket_seconds: int,
        client: redis.Redis,
        names: StreamNames,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.bucket_seconds = bucket_seconds
        self.client = client
        self.names = names
        self.metrics = metrics
        self._next_prune = 0.0  # monotonic time of the next applied_frames pruning (0: at the first batch)

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Commit the batch's counts; returns no outputs (the commit is the output) and the malformed."""
        self._prune_if_due()
        good, dead = decode_all(entries, EmotionsMessage.decode, EmotionsMessage.KIND)
        messages = [message for _, message in good]
        with transaction(self.engine) as conn:
            counted = apply_emotions(conn, messages, self.bucket_seconds)
        committed_ms = time.time() * 1000
        for message in counted:
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "faces", message.faces)
            counters.add(message.key.store_id, message.key.camera_id, "visits", len(message.visits))
        if len(counted) < len(messages):
            skipped = len(messages) - len(counted)
            log.info("aggregator: %d of %d frames were already counted", skipped, len(messages))
        self._record_latency([committed_ms - m.captured_ms for m in counted])
        self._count_emotions(counted)
        return BatchResult(dead=dead)

    def _count_emotions(self, counted: Sequence[EmotionsMessage]) -> None:
        """Readable visits by emotion per store in the metrics (the Prometheus satisfaction alert)."""
        if self.metrics is None:
            return
        for message in counted:
            for visit in message.visits:
                if visit.emotion is not None:
                    self.metrics.readable_visits.labels(message.key.store_id, visit.emotion).inc()

    def _prune_if_due(self) -> None:
        """Once an hour, forget frame identities older than APPLIED_FRAMES_RETENTION (bounded table)."""
        if time.monotonic() < self._next_prune:
            return
        with transaction(self.engine) as conn:
            pruned = prune_applied_frames(conn)
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        if pruned:
            log.info("aggregator: forgot %d frame identities older than the retention", pruned)

    def _record_latency(self, latencies_ms: list[float]) -> None:
        """Observe latencies (ms) in the metrics and push them to the capped Redis latency list."""
        if not latencies_ms:
            return
        if self.metrics is not None:
            for value in latencies_ms:
                self.metrics.latency.observe(value / 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(self.names.latency, *[f"{v:.0f}" for v in latencies_ms])
        pipe.ltrim(self.names.latency, 0, LATENCY_SAMPLES - 1)
        pipe.execute()
