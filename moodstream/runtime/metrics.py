"""Per-process Prometheus metrics, plus per-camera counters shared through Redis for ``moodstream status``.

Each process owns one ``PipelineMetrics`` (its own CollectorRegistry, no global state); ``serve(port)``
exposes it in Prometheus text format. ``StageCounters`` batches per-camera increments and flushes them
into the Redis hash ``<prefix>stats:<stage>`` so any process (status, the live view of ``run``) can read
fleet-wide totals.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Final

import redis
from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client import Counter as PromCounter

from moodstream.common.streams import StreamNames

log = logging.getLogger(__name__)

COUNTER_NAMES: Final[tuple[str, ...]] = (
    "frames_in",
    "frames_out",
    "faces",
    "errors",
    "dead",
    "shed",
    "frames_late",
    "visits",
)
"""Per-camera counters kept by every stage (``store/camera:<name>`` fields of the stats hash)."""


class PipelineMetrics:
    """Prometheus metrics of one process: per stage and camera frames, faces, losses, time, lag."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("stage", "store", "camera")
        self.frames_in = PromCounter(
            "moodstream_frames_in", "Frames taken in", labels, registry=self.registry
        )
        self.frames_out = PromCounter(
            "moodstream_frames_out", "Frames written downstream", labels, registry=self.registry
        )
        self.faces = PromCounter("moodstream_faces", "Faces seen", labels, registry=self.registry)
        self.errors = PromCounter("moodstream_errors", "Errors", labels, registry=self.registry)
        self.dead = PromCounter("moodstream_dead", "Entries sent to dead", labels, registry=self.registry)
        self.shed = PromCounter("moodstream_shed", "Frames shed by caps", labels, registry=self.registry)
        self.frames_late = PromCounter(
            "moodstream_frames_late",
            "Frames that reached the tracker after its reorder window had passed them (counted, not tracked)",
            labels,
            registry=self.registry,
        )
        self.visits = PromCounter("moodstream_visits", "Visits ended", labels, registry=self.registry)
        self.batch_seconds = Histogram(
            "moodstream_batch_seconds",
            "Time to process one batch",
            ("stage",),
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.lag = Gauge(
            "moodstream_stream_lag",
            "Entries not yet delivered to the group",
            ("stage",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "moodstream_capture_to_commit_seconds",
            "Capture time to PostgreSQL commit",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )

    def serve(self, port: int) -> None:
        """Expose the metrics over HTTP on ``port`` (a daemon thread; 0 or less does nothing)."""
        if port <= 0:
            return
        try:
            start_http_server(port, registry=self.registry)
        except OSError as exc:
            log.warning("metrics not served: port %d unavailable (%s)", port, exc.strerror or exc)


class StageCounters:
    """Per-camera counters of one stage, accumulated locally and flushed to Redis and Prometheus."""

    def __init__(self, stage: str, names: StreamNames, metrics: PipelineMetrics | None = None) -> None:
        self.stage = stage
        self.names = names
        self.metrics = metrics
        self._pending: Counter[tuple[str, str, str]] = Counter()

    def add(self, store: str, camera: str, name: str, amount: int = 1) -> None:
        """Count ``amount`` of ``name`` (one of COUNTER_NAMES) for a camera."""
        if amount:
            self._pending[(store, camera, name)] += amount

    def flush(self, pipe: redis.client.Pipeline | redis.Redis) -> None:
        """Queue the accumulated increments on ``pipe`` (HINCRBY) and feed Prometheus; then reset."""
        key = self.names.stats(self.stage)
        for (store, camera, name), amount in self._pending.items():
            pipe.hincrby(key, f"{store}/{camera}:{name}", amount)
            if self.metrics is not None:
                counter = getattr(self.metrics, name)
                counter.labels(self.stage, store, camera).inc(amount)
        self._pending.clear()


def read_stage_counters(client: redis.Redis, names: StreamNames, stage: str) -> dict[str, dict[str, int]]:
    """The stats hash of a stage as {"store/camera": {counter: value}}."""
    out: dict[str, dict[str, int]] = {}
    raw: Any = client.hgetall(names.stats(stage))
    for raw_field, raw_value in raw.items():
        label, _, name = bytes(raw_field).decode().rpartition(":")
        out.setdefault(label, {})[name] = int(raw_value)
    return out
