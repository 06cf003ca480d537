"""Per-process Prometheus metrics, plus per-camera counters shared through Redis for ``moodstream status``.

Each process owns one ``PipelineMetrics`` (its own CollectorRegistry, no global state);
``moodstream.runtime.observability`` serves it (with the health probes) in Prometheus text format; ingest
serves an ``IngestCollector`` instead. ``StageCounters`` batches per-camera increments and flushes them
into the Redis hash ``<prefix>stats:<stage>`` so any process (status, the live view of ``run``) can read
fleet-wide totals.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import redis
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moodstream.common.streams import StreamNames

if TYPE_CHECKING:
    from moodstream.ingest import CameraSpec, CameraStatus

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
        self.readable_visits = PromCounter(
            "moodstream_readable_visits",
            "Readable visits counted into PostgreSQL (aggregator), by the visit's emotion: the satisfaction "
            "per visit of a store is (happy - angry - disgust - fear - sad) / all of them",
            ("store", "emotion"),
            registry=self.registry,
        )
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


CameraStates = Callable[[], "list[tuple[CameraSpec, CameraStatus | None]]"]
"""Every enabled camera of ingest with its reader's status (None: its store is closed)."""


class IngestCollector(Collector):
    """Prometheus metrics of the ingest process, read from its camera readers at each scrape.

    Per camera (labels ``stage="ingest"``, ``store``, ``camera``): ``moodstream_frames_out_total`` (frames
    published by the current reader), ``moodstream_errors_total`` (camera errors), ``moodstream_shed_total``
    (frames the stream cap shed); and the gauges ``moodstream_camera_up`` (1 while the source delivers),
    ``moodstream_camera_open`` (1 inside the store's opening hours, 0 outside: nothing is read) and
    ``moodstream_camera_last_frame_timestamp_seconds`` (wall-clock time ingest last saw a new frame of the
    camera, or when its reader started; only while the store is open).
    """

    def __init__(self, states: CameraStates, shed: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.states = states
        self.shed = shed
        self._seen: dict[tuple[str, str, int], tuple[int, float]] = {}

    def describe(self) -> Iterable[Metric]:
        """No fixed description (the families depend on the cameras); collected at each scrape."""
        return []

    def collect(self) -> Iterable[Metric]:
        """The families above, one sample per camera."""
        labels = ["stage", "store", "camera"]
        frames = CounterMetricFamily("moodstream_frames_out", "Frames written downstream", labels=labels)
        errors = CounterMetricFamily("moodstream_errors", "Errors", labels=labels)
        shed = CounterMetricFamily("moodstream_shed", "Frames shed by caps", labels=labels)
        camera = ["store", "camera"]
        up = GaugeMetricFamily("moodstream_camera_up", "1 while the camera delivers frames", labels=camera)
        opened = GaugeMetricFamily(
            "moodstream_camera_open", "1 inside the store's opening hours (0: not read)", labels=camera
        )
        last = GaugeMetricFamily(
            "moodstream_camera_last_frame_timestamp_seconds",
            "Unix time ingest last saw a new frame of the camera (or its reader started), open stores only",
            labels=camera,
        )
        shed_counts = dict(self.shed())
        states = self.states()
        current = {(s.store_id, s.camera_id, status.epoch) for s, status in states if status is not None}
        self._seen = {key: seen for key, seen in self._seen.items() if key in current}
        for spec, status in states:
            ident = [spec.store_id, spec.camera_id]
            shed.add_metric(["ingest", *ident], shed_counts.get((spec.store_id, spec.camera_id), 0))
            opened.add_metric(ident, 0 if status is None else 1)
            if status is None:
                continue
            frames.add_metric(["ingest", *ident], status.frames)
            errors.add_metric(["ingest", *ident], status.errors)
            up.add_metric(ident, 1 if status.state == "online" else 0)
            last.add_metric(ident, self._last_seen(spec.store_id, spec.camera_id, status))
        return [frames, errors, shed, up, opened, last]

    def _last_seen(self, store: str, camera: str, status: CameraStatus) -> float:
        """Wall time at which this collector first saw the reader's current frame count (capture times of
        recorded footage may lie in the past; this does not)."""
        key = (store, camera, status.epoch)
        previous = self._seen.get(key)
        if previous is None:
            seen = (status.frames, status.epoch / 1000 if status.frames == 0 else time.time())
        elif previous[0] != status.frames:
            seen = (status.frames, time.time())
        else:
            seen = previous
        self._seen[key] = seen
        return seen[1]
