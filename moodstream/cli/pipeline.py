"""`moodstream run` (the whole pipeline, embedded servers by default) and `moodstream ingest|detect|track|
classify|aggregate|forward` (one stage alone against the servers named by MOODSTREAM_REDIS_URL /
_DATABASE_URL; `forward` also MOODSTREAM_CENTRAL_REDIS_URL).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.live import Live

from moodstream.common.redaction import redact_text
from moodstream.runtime.models import AnalysisConfig
from moodstream.runtime.processes import RunOptions
from moodstream.runtime.settings import Settings, SettingsError
from moodstream.runtime.worker import WorkerConfig

if TYPE_CHECKING:
    from moodstream.runtime.progress import StoreTotals
    from moodstream.schemas.registry import Registry

log = logging.getLogger(__name__)
console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 130)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="stores.yaml camera registry.")]
FpsWidth = Annotated[
    int | None, typer.Option("--max-input-width", help="Downscale wider frames before face detection.")
]
Model = Annotated[str, typer.Option("--model", help="FER model: default, a shipped name or a path.")]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve /metrics, /healthz and /readyz on this port (default MOODSTREAM_METRICS_PORT, 0: none).",
    ),
]
MetricsAddress = Annotated[
    str | None,
    typer.Option(
        "--metrics-address",
        help="Address of /metrics, /healthz and /readyz (default MOODSTREAM_METRICS_ADDRESS or 127.0.0.1).",
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=1024, help="Entries per XREADGROUP.")]
Threads = Annotated[
    int,
    typer.Option("--threads", min=0, max=256, help="ONNX Runtime threads per model process (0: its choice)."),
]

ANALYSIS_DEFAULTS = AnalysisConfig()
"""Where the model options' defaults come from (stated once, in the configs)."""
WORKER_DEFAULTS = WorkerConfig()
"""Where the consumer-loop options' defaults come from."""
METRICS_PORT_DEFAULT: int | None = None
"""None: the port of MOODSTREAM_METRICS_PORT (Settings)."""


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {redact_text(message)}")
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise _fail(str(exc)) from None


def _load(path: Path) -> Registry:
    from moodstream.schemas.registry import RegistryError, load_registry

    try:
        return load_registry(path)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot read registry {path}: {exc.strerror or exc}") from None


def _base_options(
    settings: Settings,
    urls: tuple[str, str | None],
    registry_path: Path | None,
    analysis: AnalysisConfig = ANALYSIS_DEFAULTS,
    worker: WorkerConfig = WORKER_DEFAULTS,
    metrics_port: int | None = METRICS_PORT_DEFAULT,
    metrics_address: str | None = None,
) -> RunOptions:
    """Run options from the environment, the server URLs (redis, database) and the command's knobs (a
    metrics port or address left None comes from the environment)."""
    redis_url, database_url = urls
    return RunOptions.model_validate(
        {
            "redis_url": redis_url,
            "database_url": database_url,
            "prefix": settings.stream_prefix,
            "registry": registry_path.resolve() if registry_path else None,
            "analysis": analysis,
            "worker": worker,
            "metrics_port": settings.metrics_port if metrics_port is None else metrics_port,
            "metrics_address": metrics_address or settings.metrics_address,
            "log_level": settings.log_level,
        }
    )


# ------------------------------------------------------------------------------------------- run


def run(
    config: ConfigOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Run on a generated demo clip (no file needed).")
    ] = False,
    detectors: Annotated[int, typer.Option("--detectors", min=1, max=32, help="Detector processes.")] = 1,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Keep running after every (non-looping) file has ended.")
    ] = False,
    max_input_width: FpsWidth = ANALYSIS_DEFAULTS.max_input_width,
    model: Model = ANALYSIS_DEFAULTS.model,
    threads: Threads = ANALYSIS_DEFAULTS.intra_op_threads,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=1, help="Stop after this many seconds (default: Ctrl-C)."),
    ] = None,
) -> None:
    """Run ingest, detector, tracker, classifier and aggregator as separate processes with a live view
    (visits first); Ctrl-C stops.

    Starts embedded Redis/PostgreSQL when MOODSTREAM_REDIS_URL / MOODSTREAM_DATABASE_URL are unset,
    migrates the database and syncs the registry first. With --metrics-port P each process serves /metrics,
    /healthz and /readyz: the aggregator on P, the classifier on P+1, the tracker on P+2, ingest on P+3 and
    detector i on P+3+i.
    """
    from moodstream.runtime.demo import ensure_demo_videos, write_demo_registry
    from moodstream.runtime.embedded import EmbeddedServerError, embedded_servers
    from moodstream.runtime.processes import options_from_registry, setup_logging

    settings = _settings()
    if demo == (config is not None):
        raise _fail("give either -c stores.yaml or --demo")
    path = write_demo_registry(settings.data_dir) if demo else config
    assert path is not None
    registry = _load(path)
    ensure_demo_videos([str(c.source) for _, c in registry.cameras()], settings.data_dir)
    setup_logging("WARNING", tuple(registry.secrets))
    try:
        with embedded_servers(settings) as urls:
            analysis = AnalysisConfig(model=model, max_input_width=max_input_width, intra_op_threads=threads)
            base = _base_options(
                settings,
                (urls.redis_url, urls.database_url),
                path,
                analysis,
                metrics_port=metrics_port,
                metrics_address=metrics_address,
            )
            all_files = all(c.source_kind == "file" and not c.loop for _, c in registry.cameras())
            quiet = "WARNING" if not os.environ.get("MOODSTREAM_LOG_LEVEL") else settings.log_level
            options = options_from_registry(registry, base).updated(
                {"exit_when_done": all_files and not keep_running, "log_level": quiet}
            )
            _prepare_database(urls.database_url, registry, settings)
            _run_processes(options, urls.database_url, registry, detectors, duration)
    except EmbeddedServerError as exc:
        raise _fail(str(exc)) from None


def _prepare_database(database_url: str, registry: Registry, settings: Settings) -> None:
    from moodstream.runtime.database import DatabaseError, create_database_engine, migrate, sync_registry

    try:
        engine = create_database_engine(database_url, settings.connect_timeout)
        migrate(engine, settings.reader_role)
        sync_registry(engine, registry)
        engine.dispose()
    except DatabaseError as exc:
        raise _fail(str(exc)) from None


def _run_processes(
    options: RunOptions, database_url: str, registry: Registry, detectors: int, duration: float | None
) -> None:
    """Start the stage processes (``detectors`` detector processes) and show the live view until done,
    ``duration`` seconds (None: until Ctrl-C) or a stage exits."""
    import sqlalchemy.exc

    from moodstream.runtime.database import create_database_engine
    from moodstream.runtime.processes import spawn_stage, stop_processes
    from moodstream.runtime.progress import store_table, store_totals

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers = [
        *spawn_stage("aggregator", options),
        *spawn_stage("classifier", options, port_offset=1),
        *spawn_stage("tracker", options, port_offset=2),
        *spawn_stage("detector", options, detectors, port_offset=4),
    ]
    ingest = spawn_stage("ingest", options, port_offset=3)[0]
    console.print(f"moodstream: {len(list(registry.cameras()))} cameras; Ctrl-C stops")
    engine = create_database_engine(database_url, check=False)
    stores = [s.id for s in registry.stores]
    try:
        _live_view(options, stop, ingest, workers, duration, lambda: store_totals(engine, stores))
    finally:
        signal.signal(signal.SIGINT, previous)
        stop_processes([ingest, *workers])
    try:
        console.print()  # the live view's last frame may end without a line break
        console.print(store_table(store_totals(engine, stores)))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        console.print(f"[red]per-store summary unavailable:[/red] {redact_text(str(exc).splitlines()[0])}")
    engine.dispose()


def _live_view(
    options: RunOptions,
    stop: threading.Event,
    ingest: BaseProcess,
    workers: list[BaseProcess],
    duration: float | None,
    totals: Callable[[], list[StoreTotals]],
) -> None:
    """Refresh the per-camera table every second and the per-store summary every 5 s until done."""
    import redis
    import sqlalchemy.exc

    from moodstream.common.streams import StreamNames, connect_redis
    from moodstream.runtime.processes import GROUPS
    from moodstream.runtime.progress import camera_progress, drained, progress_table, store_table

    names = StreamNames(options.prefix)
    client = connect_redis(options.redis_url)
    deadline = time.monotonic() + duration if duration else None
    summary = store_table([])
    next_summary = 0.0
    with Live(console=console, refresh_per_second=2) as live:
        while not stop.wait(1.0):
            done = False
            try:
                if time.monotonic() >= next_summary:
                    summary, next_summary = store_table(totals()), time.monotonic() + 5
                live.update(Group(progress_table(camera_progress(client, names)), summary))
                done = not ingest.is_alive() and options.exit_when_done and drained(client, names, GROUPS)
            except (redis.RedisError, sqlalchemy.exc.SQLAlchemyError) as exc:  # the view only; stages go on
                log.warning("live view not refreshed: %s", redact_text(str(exc).splitlines()[0]))
            if [p for p in workers if not p.is_alive()]:
                console.print("[red]a stage process exited unexpectedly; stopping[/red]")
                break
            if done or (deadline is not None and time.monotonic() >= deadline):
                break
        with contextlib.suppress(redis.RedisError):
            live.update(progress_table(camera_progress(client, names)))
    client.close()


# ------------------------------------------------------------------------------------------- stages alone


def _run_alone(stage: str, options: RunOptions) -> None:
    from moodstream.runtime.processes import STAGE_RUNNERS, install_stop_signals, setup_logging

    setup_logging(options.log_level, options.secrets)
    stop = threading.Event()
    install_stop_signals(stop)
    STAGE_RUNNERS[stage](options, stop)


def _external(settings: Settings, need_database: bool) -> tuple[str, str | None]:
    if settings.redis_url is None:
        raise _fail("set MOODSTREAM_REDIS_URL (a single stage runs against external servers; see `run`)")
    if need_database and settings.database_url is None:
        raise _fail("set MOODSTREAM_DATABASE_URL (the aggregator writes to PostgreSQL)")
    return settings.redis_url, settings.database_url


def _stage_options(
    config: Path | None,
    need_database: bool,
    analysis: AnalysisConfig = ANALYSIS_DEFAULTS,
    worker: WorkerConfig = WORKER_DEFAULTS,
    metrics: tuple[int | None, str | None] = (METRICS_PORT_DEFAULT, None),
) -> RunOptions:
    """Run options of a stage run alone: external servers, the command's knobs (``metrics``: port and
    address, None from the environment), then the registry's."""
    from moodstream.runtime.processes import options_from_registry

    settings = _settings()
    urls = _external(settings, need_database)
    options = _base_options(settings, urls, config, analysis, worker, *metrics)
    return options_from_registry(_load(config), options) if config else options


def ingest_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="stores.yaml")],
    stores: StoresOption = None,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
) -> None:
    """Read every enabled camera of the registry (with --stores: of those stores only) into the frames
    stream; follows edits of the file and the stores' opening hours."""
    _run_alone(
        "ingest",
        _with_stores(_stage_options(config, False, metrics=(metrics_port, metrics_address)), config, stores),
    )


def detect_command(
    config: ConfigOption = None,
    max_input_width: FpsWidth = ANALYSIS_DEFAULTS.max_input_width,
    batch_size: BatchSize = WORKER_DEFAULTS.batch_size,
    threads: Threads = ANALYSIS_DEFAULTS.intra_op_threads,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
) -> None:
    """One detector worker: frames -> faces (run as many as needed)."""
    analysis = AnalysisConfig(max_input_width=max_input_width, intra_op_threads=threads)
    worker = WorkerConfig(batch_size=batch_size)
    _run_alone("detector", _stage_options(config, False, analysis, worker, (metrics_port, metrics_address)))


def track_command(
    config: ConfigOption = None,
    batch_size: BatchSize = 32,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds", min=1, max=600, help="How long a successor waits after this tracker died."
        ),
    ] = 10.0,
) -> None:
    """THE tracker worker: faces -> tracks (visits). Run exactly one: it needs each camera's frames in order;
    a second one waits (log line) and takes over when the first stops. Visit settings from -c stores.yaml."""
    worker = WorkerConfig(batch_size=batch_size)
    options = _stage_options(config, False, ANALYSIS_DEFAULTS, worker, (metrics_port, metrics_address))
    _run_alone("tracker", options.model_copy(update={"tracker_lease_ms": round(lease_seconds * 1000)}))


def classify_command(
    config: ConfigOption = None,
    model: Model = ANALYSIS_DEFAULTS.model,
    batch_size: BatchSize = WORKER_DEFAULTS.batch_size,
    threads: Threads = ANALYSIS_DEFAULTS.intra_op_threads,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
) -> None:
    """One classifier worker: tracks -> emotions (classifies the votes of ended visits)."""
    analysis = AnalysisConfig(model=model, intra_op_threads=threads)
    worker = WorkerConfig(batch_size=batch_size)
    _run_alone("classifier", _stage_options(config, False, analysis, worker, (metrics_port, metrics_address)))


def aggregate_command(
    config: ConfigOption = None,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
) -> None:
    """One aggregator: emotions -> PostgreSQL counts (bucket width from -c stores.yaml, else 60 s)."""
    _run_alone("aggregator", _stage_options(config, True, metrics=(metrics_port, metrics_address)))


# ------------------------------------------------------------------------------------------- ingest shards


StoresOption = Annotated[
    list[str] | None,
    typer.Option(
        "--stores",
        help="Read only these stores' cameras (ids, comma-separated or repeated): shards ingest by store.",
    ),
]


def parse_store_ids(values: list[str] | None) -> tuple[str, ...]:
    """Store ids from ``--stores`` values (comma-separated, repeatable), in order, without duplicates.

    Raises ValueError when a value holds no id at all (``--stores ""`` or ``--stores ,``).
    """
    ids: list[str] = []
    for value in values or []:
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise ValueError(f"--stores {value!r} holds no store id (expected ids like hn-1,hn-2)")
        ids += [part for part in parts if part and part not in ids]
    return tuple(ids)


def _with_stores(options: RunOptions, config: Path, values: list[str] | None) -> RunOptions:
    """``options`` with the ingest's ``--stores`` selection parsed and checked against the registry."""
    from pydantic import ValidationError

    from moodstream.runtime.processes import UnknownStoreError, check_stores
    from moodstream.schemas.registry import SLUG_WORDS

    try:
        stores = parse_store_ids(values)
        options = options.updated({"ingest_stores": stores})
        check_stores(_load(config), frozenset(stores))
    except ValidationError as exc:
        bad = ", ".join(repr(e["input"]) for e in exc.errors())
        raise _fail(f"--stores: {bad} is not a store id ({SLUG_WORDS})") from None
    except UnknownStoreError as exc:
        raise _fail(f"--stores: {exc}") from None
    except ValueError as exc:  # parse_store_ids: a value without any id
        raise _fail(str(exc)) from None
    return options


def forward_command(
    config: ConfigOption = None,
    batch_size: BatchSize = 64,
    central_maxlen: Annotated[
        int,
        typer.Option(
            "--central-maxlen",
            min=1000,
            max=10_000_000,
            help="Cap of the central emotions/dead streams; results wait at the store while the central "
            "aggregator lags by half of it.",
        ),
    ] = RunOptions.model_fields["central_maxlen"].default,
    metrics_port: MetricsPort = METRICS_PORT_DEFAULT,
    metrics_address: MetricsAddress = None,
) -> None:
    """Store-edge mode, on a store box: forward the store's results (emotions entries and dead letters, never
    an image) from MOODSTREAM_REDIS_URL to the central Redis named by MOODSTREAM_CENTRAL_REDIS_URL. Results
    wait at the store while the link is down; beyond 90% of pipeline.results_maxlen the oldest are shed,
    counted per camera."""
    settings = _settings()
    if settings.central_redis_url is None:
        raise _fail("set MOODSTREAM_CENTRAL_REDIS_URL (the central Redis the results go to)")
    worker = WorkerConfig(batch_size=batch_size)
    options = _stage_options(
        config, False, ANALYSIS_DEFAULTS, worker, (metrics_port, metrics_address)
    ).updated(
        {
            "central_redis_url": settings.central_redis_url,
            "central_prefix": settings.central_stream_prefix,
            "central_maxlen": central_maxlen,
        }
    )
    _run_alone("forwarder", options)


def register(app: typer.Typer) -> None:
    """Add run, ingest, detect, track, classify, aggregate and forward."""
    app.command("run")(run)
    app.command("ingest")(ingest_command)
    app.command("detect")(detect_command)
    app.command("track")(track_command)
    app.command("classify")(classify_command)
    app.command("aggregate")(aggregate_command)
    app.command("forward")(forward_command)
