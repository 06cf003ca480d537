"""Recorded footage end to end (real models, real Redis and PostgreSQL): a shared video with ``start:`` in
stores.yaml is counted in the buckets of when it was recorded, not of when it was processed, and reading
the same file a second time (with a fresh tracker, so every frame reaches the aggregator again) adds
nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest import sample_file
from moodstream.runtime.database import sync_registry
from moodstream.runtime.metrics import read_stage_counters
from moodstream.runtime.models import AnalysisConfig
from moodstream.runtime.processes import (
    GROUPS,
    RunOptions,
    options_from_registry,
    run_aggregator,
    run_classifier,
    run_detector,
    run_ingest,
    run_tracker,
)
from moodstream.runtime.progress import drained
from moodstream.schemas import tables
from moodstream.schemas.registry import load_registry
from tests.integration.helpers import skip_mixed_server_kinds

VIDEO = "facenet-pytorch-video.mp4"
FPS = 4.0
START_LOCAL = "2026-03-01T16:59:58+07:00"
"""The recording started 2 s before 10:00 UTC: its 4.2 s fall into two 60 s buckets."""
START = datetime(2026, 3, 1, 9, 59, 58, tzinfo=UTC)


def _registry(path: Path, video: Path) -> Path:
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "pipeline:",
                "  bucket: 60s",
                "  reclaim_idle: 2s",
                "  reorder: {max_frames: 256, max_wait_seconds: 60, idle_flush_seconds: 2}",
                "stores:",
                "  - id: hcm-footage",
                "    branch: hcm",
                "    timezone: Asia/Ho_Chi_Minh",
                "    cameras:",
                "      - id: door",
                f"        source: {video}",
                f"        fps: {FPS}",
                f"        start: {START_LOCAL}",
            ]
        )
        + "\n"
    )
    return path


class _Stage:
    """One stage running in a thread of this process until ``stop``."""

    def __init__(self, target: Callable[[RunOptions, threading.Event], None], options: RunOptions) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=target, args=(options, self.stop), daemon=True)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def options(
    request: pytest.FixtureRequest,
    redis_url: str,
    redis_prefix: str,
    migrated_database_url: str,
    engine: Engine,
    shared_data: Path,
    tmp_path: Path,
) -> RunOptions:
    skip_mixed_server_kinds(request)
    path = _registry(tmp_path / "stores.yaml", shared_data / "video" / VIDEO)
    registry = load_registry(path)
    sync_registry(engine, registry)
    base = RunOptions(
        redis_url=redis_url,
        database_url=migrated_database_url,
        prefix=redis_prefix,
        registry=path,
        analysis=AnalysisConfig(max_input_width=640, intra_op_threads=1),
        log_level="WARNING",
    )
    return options_from_registry(registry, base).updated({"exit_when_done": True})


@pytest.fixture
def stages(options: RunOptions) -> Iterator[dict[str, _Stage]]:
    running = {
        "detector": _Stage(run_detector, options),
        "tracker": _Stage(run_tracker, options),
        "classifier": _Stage(run_classifier, options),
        "aggregator": _Stage(run_aggregator, options),
    }
    yield running
    for stage in running.values():
        stage.end()


def _buckets(engine: Engine) -> dict[datetime, tuple[Any, ...]]:
    t = tables.emotion_counts
    columns = [t.c[c] for c in tables.COUNT_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.bucket_start, *columns).order_by(t.c.bucket_start)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def _wait(predicate: Callable[[], bool], timeout: float = 300.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_footage_with_a_start_lands_in_its_capture_buckets_and_a_second_run_adds_nothing(
    options: RunOptions, stages: dict[str, _Stage], engine: Engine, shared_data: Path
) -> None:
    stamps = [stamp for stamp, _ in sample_file(shared_data / "video" / VIDEO, FPS)]
    first_bucket = sum(1 for s in stamps if s < 2000)
    client = connect_redis(options.redis_url)
    names = StreamNames(options.prefix)

    def counted() -> int:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.sum(tables.emotion_counts.c.frames), 0))) or 0)

    run_ingest(options, threading.Event())  # returns once the file is read (exit_when_done)
    assert _wait(lambda: counted() == len(stamps)), f"counted {counted()} of {len(stamps)}"
    first = _buckets(engine)
    frames_at = {start: row[tables.COUNT_COLUMNS.index("frames")] for start, row in first.items()}
    assert frames_at == {
        datetime(2026, 3, 1, 9, 59, tzinfo=UTC): first_bucket,
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC): len(stamps) - first_bucket,
    }
    faces = sum(row[tables.COUNT_COLUMNS.index("faces")] for row in first.values())
    assert faces > 0

    stages["tracker"].end()  # a fresh tracker tracks the second pass again: every frame reaches PostgreSQL
    stages["tracker"] = _Stage(run_tracker, options)
    run_ingest(options, threading.Event())

    def second_pass_through() -> bool:
        tracked = read_stage_counters(client, names, "tracker").get("hcm-footage/door", {})
        return tracked.get("frames_out", 0) >= 2 * len(stamps) and drained(client, names, GROUPS)

    assert _wait(second_pass_through), read_stage_counters(client, names, "tracker")
    assert _buckets(engine) == first
    with engine.connect() as conn:
        applied = conn.scalar(select(func.count()).select_from(tables.applied_frames))
    assert applied == len(stamps)
    client.close()


def test_a_footage_reader_is_held_back_by_the_detectors_backlog_not_by_the_clock(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    from moodstream.common.streams import ensure_group
    from moodstream.ingest import CameraReader, CameraSpec, FootagePacer, FramePublisher, IngestConfig
    from tests.unit.test_ingest import write_counter_video

    video = write_counter_video(tmp_path / "v.mp4", frames=30, fps=10.0)  # 3 s of video, 15 samples
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    stop = threading.Event()
    ensure_group(client, names.frames, "detector")
    publisher = FramePublisher(client, redis_url, names, maxlen=10_000, stop=stop)
    pacer = FootagePacer(client, redis_url, names.frames, "detector", max_backlog=3, poll_s=0.01)
    spec = CameraSpec("s1", "cam", str(video), fps=5.0, start_ms=1_772_359_198_000)
    reader = CameraReader(spec, IngestConfig(realtime=True), publisher, pacer)
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert _wait(lambda: pacer.waits > 0, 30)
        assert client.xlen(names.frames) == 4  # 3 unread may wait; the 4th was published before the check
        read, deadline = 0, time.monotonic() + 60
        while (thread.is_alive() or read < 15) and time.monotonic() < deadline:  # a detector lets it go on
            reply: Any = client.xreadgroup("detector", "d1", {names.frames: ">"}, count=2, block=100)
            read += sum(len(items) for _, items in reply or [])
            assert read <= 15
        assert read == 15 and reader.status.state == "finished" and reader.status.progress == 1.0
    finally:
        stop.set()
        thread.join(10)
        client.close()
