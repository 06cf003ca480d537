"""Wiring of the pipeline's processes: one entry point per stage, built from one picklable ``RunOptions``.

``run_stage(name, options, stop)`` runs a stage in the calling process until ``stop`` is set;
``stage_process_main`` is the target of the child processes ``moodstream run`` starts (it installs
SIGTERM/SIGINT handlers that let the batch in hand finish). Models are created here, once per process.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import redis
import sqlalchemy.exc
from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.redaction import RedactingFilter
from moodstream.common.streams import ServerUnavailable, StreamNames, connect_redis, wait_for_redis
from moodstream.ingest import CameraSpec, FramePublisher, IngestConfig, IngestSupervisor
from moodstream.runtime.camera_settings import RegistryCameras
from moodstream.runtime.database import DatabaseUnavailableError, create_database_engine
from moodstream.runtime.lease import StageLease
from moodstream.runtime.metrics import PipelineMetrics
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.settings import LogLevel
from moodstream.runtime.stages import (
    AggregatorStage,
    ClassifierStage,
    DetectorStage,
    LossesStage,
    TrackerStage,
)
from moodstream.runtime.worker import BatchHandler, StreamWorker, WorkerConfig
from moodstream.schemas import defaults
from moodstream.schemas.registry import Registry, load_registry
from moodstream.schemas.visit_config import ReorderConfig

log = logging.getLogger(__name__)

GROUPS: Final[dict[str, str]] = {
    "detector": "detector",
    "tracker": "tracker",
    "classifier": "classifier",
    "aggregator": "aggregator",
    "losses": "aggregator-losses",
}
"""Consumer group of each stage."""

DB_TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    DatabaseUnavailableError,
)


class RunOptions(BaseModel):
    """The root of the configuration tree: everything a stage process needs (sent to child processes, so it
    holds no secrets in logs).

    Fed by the environment (``Settings``: prefix, log level, server URLs), the registry's ``pipeline``
    section (``options_from_registry``: bucket, stream caps, reclaim time, deliveries, JPEG quality) and the
    command line (analysis and worker knobs). Each default is stated once: the registry-owned knobs in
    ``moodstream.schemas.defaults``, the model knobs in the stage configs, the environment ones in
    ``Settings``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field(min_length=1, description="Redis URL of the streams.")
    database_url: str | None = Field(default=None, description="PostgreSQL URL (aggregator only).")
    prefix: str = Field(min_length=1, max_length=64, description="Redis key prefix (Settings.stream_prefix).")
    registry: Path | None = Field(default=None, description="stores.yaml (ingest reads and follows it).")
    bucket_seconds: int = Field(
        default=defaults.BUCKET_SECONDS, ge=1, le=86_400, description="Aggregation bucket width."
    )
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Models and knobs.")
    reorder: ReorderConfig = Field(
        default_factory=ReorderConfig, description="The tracker's reorder window and idle flush."
    )
    tracker_lease_ms: int = Field(
        default=10_000,
        ge=1000,
        le=600_000,
        description="Time to live of the tracker's single-worker lease: how long a successor waits after "
        "a tracker died without releasing it.",
    )
    worker: WorkerConfig = Field(default_factory=WorkerConfig, description="Consumer loop tuning.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Camera reader tuning.")
    exit_when_done: bool = Field(default=False, description="Ingest exits once every camera has ended.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus port (0: none).")
    log_level: LogLevel = Field(description="Log level (Settings.log_level).")
    secrets: tuple[str, ...] = Field(default=(), description="Values to redact from every log line.")

    def updated(self, changes: Mapping[str, object]) -> RunOptions:
        """A copy with top-level fields replaced, validated like a new RunOptions (ValidationError)."""
        return RunOptions.model_validate({**self.model_dump(), **changes})


def registry_cameras(registry: Registry) -> list[CameraSpec]:
    """Enabled cameras of a loaded registry as ingest camera specs."""
    return [
        CameraSpec(
            store.id,
            camera.id,
            str(camera.source),
            float(camera.fps),
            bool(camera.loop),
            camera.detection.motion,
            tuple(tuple((float(x), float(y)) for x, y in mask) for mask in camera.masks),
            round(camera.detection.full_frame_seconds * 1000),
        )
        for store, camera in registry.cameras(enabled_only=True)
    ]


def load_camera_specs(path: Path) -> list[CameraSpec]:
    """Load stores.yaml and return its enabled cameras (RegistryError on any problem)."""
    return registry_cameras(load_registry(path))


def registry_overrides(registry: Registry) -> dict[str, object]:
    """The registry's ``pipeline`` section as RunOptions fields (nested sub-config fields as dicts)."""
    pipeline = registry.pipeline
    return {
        "bucket_seconds": pipeline.bucket_seconds,
        "worker": {
            "max_deliveries": pipeline.max_deliveries,
            "claim_idle_ms": pipeline.reclaim_idle_seconds * 1000,
            "output_maxlen": pipeline.stream_maxlen,
        },
        "ingest": {"frames_maxlen": pipeline.stream_maxlen, "jpeg_quality": pipeline.jpeg_quality},
        "reorder": pipeline.reorder.model_dump(),
    }


def options_from_registry(registry: Registry, base: RunOptions) -> RunOptions:
    """``base`` with the registry's pipeline knobs and secrets, validated as a whole (ValidationError)."""
    data = base.model_dump()
    for key, value in registry_overrides(registry).items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    data["secrets"] = tuple(sorted(set(base.secrets) | set(registry.secrets)))
    return RunOptions.model_validate(data)


def _serve_metrics(options: RunOptions) -> PipelineMetrics:
    """This process's metrics, served on ``options.metrics_port`` (0: not served)."""
    metrics = PipelineMetrics()
    metrics.serve(options.metrics_port)
    return metrics


def _worker(
    options: RunOptions,
    stage: str,
    streams: tuple[str, str | None],
    handler: BatchHandler,
    metrics: PipelineMetrics,
    client: redis.Redis | None = None,
) -> StreamWorker:
    """The consumer loop of ``stage`` over ``streams`` (input, output or None), with the run's config."""
    stream, output = streams
    return StreamWorker(
        client or connect_redis(options.redis_url),
        options.redis_url,
        StreamNames(options.prefix),
        stream=stream,
        group=GROUPS[stage],
        handler=handler,
        output_stream=output,
        config=options.worker,
        metrics=metrics,
        transient=DB_TRANSIENT,
    )


def run_detector(options: RunOptions, stop: threading.Event) -> None:
    """``frames`` -> ``faces`` until stopped."""
    names = StreamNames(options.prefix)
    handler = DetectorStage(
        build_analyzer(options.analysis, classify=False),
        RegistryCameras(options.registry).scene,
        options.analysis.min_face_size,
    )
    _worker(options, "detector", (names.frames, names.faces), handler, _serve_metrics(options)).run(stop)


def run_tracker(options: RunOptions, stop: threading.Event) -> None:
    """``faces`` -> ``tracks`` until stopped; waits while another tracker worker holds the lease.

    Exactly one tracker runs (it needs each camera's frames in order): the lease (SET NX PX, renewed) makes
    a second one wait with a log line, and it takes over, predecessor's pending entries first, when the
    first one stops or dies.
    """
    names = StreamNames(options.prefix)
    cameras = RegistryCameras(options.registry)
    handler = TrackerStage(cameras, options.reorder, zones=cameras.zones)
    worker = _worker(options, "tracker", (names.faces, names.tracks), handler, _serve_metrics(options))
    worker.config = worker.config.model_copy(update={"claim_all_on_start": True})
    client = connect_redis(options.redis_url)
    lease = StageLease(client, options.redis_url, names, "tracker", worker.consumer, options.tracker_lease_ms)
    try:
        if not lease.acquire(stop):
            return
    except ServerUnavailable as exc:
        log.warning("tracker stopping: %s", exc)
        return
    lease.keep(stop)
    try:
        worker.run(stop)
    finally:
        if not lease.lost.is_set():
            lease.release()
        client.close()


def run_classifier(options: RunOptions, stop: threading.Event) -> None:
    """``tracks`` -> ``emotions`` until stopped."""
    names = StreamNames(options.prefix)
    handler = ClassifierStage(build_analyzer(options.analysis, detect=False))
    _worker(options, "classifier", (names.tracks, names.emotions), handler, _serve_metrics(options)).run(stop)


def run_aggregator(options: RunOptions, stop: threading.Event) -> None:
    """``emotions`` -> PostgreSQL counts, and ``dead`` -> frame losses (a second thread), until stopped."""
    if options.database_url is None:
        raise ValueError("the aggregator needs a database URL (MOODSTREAM_DATABASE_URL)")
    names = StreamNames(options.prefix)
    engine = create_database_engine(options.database_url, check=False)
    client = connect_redis(options.redis_url)
    metrics = _serve_metrics(options)
    counts = AggregatorStage(engine, options.bucket_seconds, client, names, metrics)
    losses = LossesStage(engine, options.bucket_seconds)
    loss_worker = _worker(options, "losses", (names.dead, None), losses, metrics)
    thread = threading.Thread(target=loss_worker.run, args=(stop,), name="losses", daemon=True)
    thread.start()
    try:
        _worker(options, "aggregator", (names.emotions, None), counts, metrics, client).run(stop)
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()


def run_ingest(options: RunOptions, stop: threading.Event) -> None:
    """Read every enabled camera of the registry and follow its edits, until stopped."""
    if options.registry is None:
        raise ValueError("ingest needs a registry file (-c stores.yaml)")
    names = StreamNames(options.prefix)
    client = connect_redis(options.redis_url)
    try:
        wait_for_redis(client, options.redis_url, stop)
    except ServerUnavailable as exc:  # stopped while Redis was unreachable: one line, no traceback
        log.warning("ingest stopping: %s", exc)
        return
    publisher = FramePublisher(client, options.redis_url, names, options.ingest.frames_maxlen, stop)
    supervisor = IngestSupervisor(
        options.registry, load_camera_specs, client, publisher, names, options.ingest
    )
    supervisor.run(stop, initial=load_camera_specs(options.registry), until_finished=options.exit_when_done)


STAGE_RUNNERS: Final[dict[str, Callable[[RunOptions, threading.Event], None]]] = {
    "ingest": run_ingest,
    "detector": run_detector,
    "tracker": run_tracker,
    "classifier": run_classifier,
    "aggregator": run_aggregator,
}
"""Entry point of each stage process."""


def setup_logging(level: str, secrets: tuple[str, ...] = ()) -> None:
    """Log to stderr through a redacting filter (URL passwords and known secrets become ***)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (the batch in hand finishes, then the stage exits)."""

    def _handler(signum: int, _frame: object) -> None:
        log.info("signal %d received: finishing the batch in hand, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def spawn_stage(
    stage: str, options: RunOptions, n: int = 1, port_offset: int = 0
) -> list[multiprocessing.process.BaseProcess]:
    """Start ``n`` child processes (spawned, not forked) running ``stage``.

    With a metrics port set, process i serves on ``metrics_port + port_offset + i`` (one port each).
    """
    ctx = multiprocessing.get_context("spawn")
    procs: list[multiprocessing.process.BaseProcess] = []
    for i in range(n):
        name = stage if n == 1 else f"{stage}-{i + 1}"
        port = options.metrics_port + port_offset + i if options.metrics_port else 0
        child = options.updated({"metrics_port": port})
        proc = ctx.Process(target=stage_process_main, args=(stage, child), name=name, daemon=False)
        proc.start()
        procs.append(proc)
    return procs


def stop_processes(procs: list[multiprocessing.process.BaseProcess], timeout: float = 20.0) -> None:
    """SIGTERM each live process (it finishes its batch), wait up to ``timeout``, then kill stragglers."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(2)


def stage_process_main(stage: str, options: RunOptions) -> None:
    """Target of a stage child process: logging, signals, then the stage until stopped."""
    setup_logging(options.log_level, options.secrets)
    stop = threading.Event()
    install_stop_signals(stop)
    STAGE_RUNNERS[stage](options, stop)
