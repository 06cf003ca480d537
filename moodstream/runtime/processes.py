"""Wiring of the pipeline's processes: one entry point per stage, built from one picklable ``RunOptions``.

``run_stage(name, options, stop)`` runs a stage in the calling process until ``stop`` is set;
``stage_process_main`` is the target of the child processes ``moodstream run`` starts (it installs
SIGTERM/SIGINT handlers that let the batch in hand finish). Models are created here, once per process.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.process
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Final

import redis
import sqlalchemy.exc
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from moodstream.common.health import HealthState
from moodstream.common.lease import StageLease
from moodstream.common.redaction import RedactingFilter, secret_spellings
from moodstream.common.streams import ServerUnavailable, StreamNames, connect_redis, wait_for_redis
from moodstream.ingest import CameraSpec, FramePublisher, IngestConfig, IngestSupervisor
from moodstream.runtime.camera_settings import RegistryCameras
from moodstream.runtime.database import (
    DatabaseError,
    DatabaseUnavailableError,
    TransactionConflictError,
    check_connection,
    create_database_engine,
)
from moodstream.runtime.metrics import IngestCollector, PipelineMetrics
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.observability import serve_observability
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
from moodstream.schemas.registry import SLUG_PATTERN, SLUG_WORDS, Registry, load_registry
from moodstream.schemas.visit_config import ReorderConfig

log = logging.getLogger(__name__)

GROUPS: Final[dict[str, str]] = {
    "detector": "detector",
    "tracker": "tracker",
    "classifier": "classifier",
    "aggregator": "aggregator",
    "losses": "aggregator-losses",
    "forwarder": "forwarder",
}
"""Consumer group of each stage."""

DB_TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    DatabaseUnavailableError,
    TransactionConflictError,
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
    ingest_stores: tuple[Annotated[str, Field(pattern=SLUG_PATTERN)], ...] = Field(
        default=(),
        max_length=10_000,
        description=f"Store ids whose cameras this ingest reads ({SLUG_WORDS}); empty: every store. "
        "Shards ingest by store: give each ingest process a disjoint set.",
    )
    results_maxlen: int | None = Field(
        default=None,
        ge=50,
        le=10_000_000,
        description="Approximate MAXLEN of the emotions (results) stream; None: stream_maxlen. On a store "
        "box (store-edge mode) it bounds the results that wait while the WAN link is down.",
    )
    central_redis_url: str | None = Field(
        default=None, description="Store-edge mode: the central Redis the forwarder writes results to."
    )
    central_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Key prefix on the central Redis (None: prefix).",
    )
    central_maxlen: int = Field(
        default=200_000,
        ge=1000,
        le=10_000_000,
        description="Approximate MAXLEN of the central emotions and dead streams the forwarder writes; a "
        "forwarder holds its results at the store while the central aggregator lags by half of it.",
    )
    exit_when_done: bool = Field(default=False, description="Ingest exits once every camera has ended.")
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Port of /metrics, /healthz and /readyz (0: none served)."
    )
    metrics_address: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=255,
        description="Address the metrics and health endpoint binds to (Settings.metrics_address; containers "
        "use 0.0.0.0).",
    )
    health_stale_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="/readyz turns 503 when the stage's loop made no round trip with its servers this long.",
    )
    log_level: LogLevel = Field(description="Log level (Settings.log_level).")
    secrets: tuple[str, ...] = Field(default=(), description="Values to redact from every log line.")

    def updated(self, changes: Mapping[str, object]) -> RunOptions:
        """A copy with top-level fields replaced, validated like a new RunOptions (ValidationError)."""
        return RunOptions.model_validate({**self.model_dump(), **changes})


class UnknownStoreError(ValueError):
    """A store selection (``moodstream ingest --stores``) names store ids the registry does not have."""


def missing_stores(registry: Registry, stores: frozenset[str]) -> list[str]:
    """The ids of ``stores`` that are not stores of ``registry``, sorted (empty: all known)."""
    return sorted(stores - {store.id for store in registry.stores})


def check_stores(registry: Registry, stores: frozenset[str]) -> None:
    """UnknownStoreError naming each id of ``stores`` missing from ``registry`` and the ids it has."""
    unknown = missing_stores(registry, stores)
    if unknown:
        known = ", ".join(store.id for store in registry.stores) or "none"
        raise UnknownStoreError(
            f"unknown store id(s) {', '.join(unknown)}: not in the registry (its stores: {known})"
        )


def registry_cameras(registry: Registry) -> list[CameraSpec]:
    """Enabled cameras of a loaded registry as ingest camera specs, each with the registry's substituted
    secrets that its source holds (so ingest masks them in logs, Redis and errors), its store's opening
    hours, for recorded footage the file's start time, and its motion gating (masks, full-frame
    period)."""
    specs = []
    for store, camera in registry.cameras(enabled_only=True):
        source = str(camera.source)
        held = tuple(sorted(s for s in registry.secrets if any(x in source for x in secret_spellings(s))))
        specs.append(
            CameraSpec(
                store.id,
                camera.id,
                source,
                float(camera.fps),
                bool(camera.loop),
                held,
                hours=store.hours,
                timezone=store.timezone,
                start_ms=None if camera.start is None else round(camera.start.timestamp() * 1000),
                motion=camera.detection.motion,
                masks=tuple(tuple((float(x), float(y)) for x, y in mask) for mask in camera.masks),
                full_frame_ms=round(camera.detection.full_frame_seconds * 1000),
            )
        )
    return specs


def load_camera_specs(path: Path, stores: frozenset[str] = frozenset()) -> list[CameraSpec]:
    """Load stores.yaml and return its enabled cameras, only those of ``stores`` when given (RegistryError
    on any problem). A selected store that is gone from the file reads nothing, with a warning: removing a
    store disables it, as removing a camera does.

    The registry's secrets are added to the redacting filters of the root logger's handlers, so a
    password added by a live edit of the file is masked in log lines too.
    """
    registry = load_registry(path)
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactingFilter):
                found.add_secrets(registry.secrets)
    gone = missing_stores(registry, stores) if stores else []
    if gone:
        log.warning("stores %s selected for this ingest are not in %s; they are not read", gone, path)
    return [spec for spec in registry_cameras(registry) if not stores or spec.store_id in stores]


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
        "ingest": {
            "frames_maxlen": pipeline.stream_maxlen,
            "jpeg_quality": pipeline.jpeg_quality,
            "max_frame_pixels": pipeline.max_frame_pixels,
        },
        "reorder": pipeline.reorder.model_dump(),
        "results_maxlen": pipeline.results_maxlen,
    }


def options_from_registry(registry: Registry, base: RunOptions) -> RunOptions:
    """``base`` with the registry's pipeline knobs and secrets, validated as a whole (ValidationError)."""
    data = base.model_dump()
    for key, value in registry_overrides(registry).items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    data["secrets"] = tuple(sorted(set(base.secrets) | set(registry.secrets)))
    return RunOptions.model_validate(data)


def _serve_metrics(options: RunOptions) -> tuple[PipelineMetrics, HealthState]:
    """This process's metrics and health, served on ``options.metrics_address:metrics_port`` (port 0: not
    served)."""
    metrics = PipelineMetrics()
    health = HealthState(options.health_stale_seconds)
    serve_observability(metrics.registry, health, options.metrics_address, options.metrics_port)
    return metrics, health


def _worker(
    options: RunOptions,
    stage: str,
    streams: tuple[str, str | None],
    handler: BatchHandler,
    served: tuple[PipelineMetrics, HealthState],
    *,
    client: redis.Redis | None = None,
    **overrides: object,
) -> StreamWorker:
    """The consumer loop of ``stage`` over ``streams`` (input, output or None), with the run's worker
    config and the stage's ``overrides`` of it (validated like the config itself)."""
    stream, output = streams
    return StreamWorker(
        client or connect_redis(options.redis_url),
        options.redis_url,
        StreamNames(options.prefix),
        stream=stream,
        group=GROUPS[stage],
        handler=handler,
        output_stream=output,
        config=type(options.worker).model_validate({**options.worker.model_dump(), **overrides}),
        metrics=served[0],
        transient=DB_TRANSIENT,
        health=served[1],
    )


def run_detector(options: RunOptions, stop: threading.Event) -> None:
    """``frames`` -> ``faces`` until stopped."""
    names = StreamNames(options.prefix)
    served = _serve_metrics(options)  # /healthz answers while the models load
    handler = DetectorStage(
        build_analyzer(options.analysis, classify=False),
        RegistryCameras(options.registry).scene,
        options.analysis.min_face_size,
    )
    _worker(options, "detector", (names.frames, names.faces), handler, served).run(stop)


def run_tracker(options: RunOptions, stop: threading.Event) -> None:
    """``faces`` -> ``tracks`` until stopped; waits while another tracker worker holds the lease.

    Exactly one tracker runs (it needs each camera's frames in order): the lease (SET NX PX, renewed) makes
    a second one wait with a log line, and it takes over, predecessor's pending entries first, when the
    first one stops or dies.
    """
    names = StreamNames(options.prefix)
    cameras = RegistryCameras(options.registry)
    handler = TrackerStage(cameras, options.reorder, zones=cameras.zones)
    served = _serve_metrics(options)
    worker = _worker(
        options, "tracker", (names.faces, names.tracks), handler, served, claim_all_on_start=True
    )
    client = connect_redis(options.redis_url)
    lease = StageLease(client, options.redis_url, names, "tracker", worker.consumer, options.tracker_lease_ms)

    def standby() -> None:  # a waiting tracker is healthy and ready: a rolling update must not stall on it
        served[1].beat("tracker: standby, waiting for the tracker lease", source="tracker")

    try:
        if not lease.acquire(stop, on_wait=standby):
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
    served = _serve_metrics(options)  # /healthz answers while the model loads
    handler = ClassifierStage(build_analyzer(options.analysis, detect=False))
    results_cap = options.results_maxlen or options.worker.output_maxlen  # store box: results wait longer
    streams = (names.tracks, names.emotions)
    _worker(options, "classifier", streams, handler, served, output_maxlen=results_cap).run(stop)


def run_aggregator(options: RunOptions, stop: threading.Event) -> None:
    """``emotions`` -> PostgreSQL counts, and ``dead`` -> frame losses (a second thread), until stopped."""
    if options.database_url is None:
        raise ValueError("the aggregator needs a database URL (MOODSTREAM_DATABASE_URL)")
    names = StreamNames(options.prefix)
    engine = create_database_engine(options.database_url, check=False)
    client = connect_redis(options.redis_url)
    served = _serve_metrics(options)
    watcher = threading.Thread(target=watch_database, args=(engine, served[1], stop), daemon=True)
    watcher.start()
    counts = AggregatorStage(engine, options.bucket_seconds, client, names, served[0])
    losses = LossesStage(engine, options.bucket_seconds)
    loss_worker = _worker(options, "losses", (names.dead, None), losses, served)
    thread = threading.Thread(target=loss_worker.run, args=(stop,), name="losses", daemon=True)
    thread.start()
    try:
        _worker(options, "aggregator", (names.emotions, None), counts, served, client=client).run(stop)
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()


DATABASE_CHECK_S: Final[float] = 10.0
"""How often the aggregator checks that PostgreSQL answers, for /readyz (its batches only touch it when
entries arrive)."""


def watch_database(engine: Engine, health: HealthState, stop: threading.Event) -> None:
    """Until ``stop``: ``SELECT 1`` every DATABASE_CHECK_S; an unreachable PostgreSQL makes the process not
    ready (source ``postgres``), an answer makes it ready again."""
    while True:
        try:
            check_connection(engine)
        except DatabaseError as exc:
            health.trouble(f"aggregator: {exc}", source="postgres")
        else:
            health.beat(source="postgres")
        if stop.wait(DATABASE_CHECK_S):
            return


def run_ingest(options: RunOptions, stop: threading.Event) -> None:
    """Read every enabled camera of the registry (of ``options.ingest_stores`` only, when set) and follow
    its edits, until stopped."""
    if options.registry is None:
        raise ValueError("ingest needs a registry file (-c stores.yaml)")
    names = StreamNames(options.prefix)
    client = connect_redis(options.redis_url)
    registry = CollectorRegistry(auto_describe=True)
    health = HealthState(options.health_stale_seconds)
    serve_observability(registry, health, options.metrics_address, options.metrics_port)
    try:
        wait_for_redis(client, options.redis_url, stop)
    except ServerUnavailable as exc:  # stopped while Redis was unreachable: one line, no traceback
        log.warning("ingest stopping: %s", exc)
        return
    load = functools.partial(load_camera_specs, stores=frozenset(options.ingest_stores))
    publisher = FramePublisher(
        client,
        options.redis_url,
        names,
        options.ingest.frames_maxlen,
        stop,
        dead_maxlen=options.worker.dead_maxlen,
    )
    supervisor = IngestSupervisor(
        options.registry, load, client, publisher, names, options.ingest, health=health
    )
    registry.register(IngestCollector(supervisor.camera_states, lambda: publisher.shed_by_camera.copy()))
    supervisor.run(stop, initial=load(options.registry), until_finished=options.exit_when_done)


def run_forwarder(options: RunOptions, stop: threading.Event) -> None:
    """Store-edge mode: the store's ``emotions`` and ``dead`` entries -> the central Redis, until stopped
    (see ``moodstream.runtime.stages.forwarder``)."""
    from moodstream.runtime.edge import forwarder_workers

    threads = [
        threading.Thread(target=worker.run, args=(stop,), name=f"forward-{i}", daemon=True)
        for i, worker in enumerate(forwarder_workers(options, _serve_metrics(options)))
    ]
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(1.0) and all(t.is_alive() for t in threads):
            pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


STAGE_RUNNERS: Final[dict[str, Callable[[RunOptions, threading.Event], None]]] = {
    "ingest": run_ingest,
    "detector": run_detector,
    "tracker": run_tracker,
    "classifier": run_classifier,
    "aggregator": run_aggregator,
    "forwarder": run_forwarder,
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

    With a metrics port set, process i serves its metrics and health on ``metrics_port + port_offset + i``
    (one port each).
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
