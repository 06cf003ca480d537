"""End to end: stage processes (`moodstream ingest|detect|classify|aggregate`) on real Redis and PostgreSQL.

* two stores with two cameras each on the shared videos give exactly the counts `moodstream analyze`
  gives for the same files and sampling; an undecodable JPEG and a malformed entry land in ``dead``;
* a detector killed with -9 while holding entries: another one reclaims them, every frame counted once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select

from moodstream.cli.analyze import analyze_file
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import DeadLetter, FrameKey, FrameMessage
from tests.integration.helpers import pending_of_group, skip_mixed_server_kinds, stage_env, xrange_all

FPS = 4.0
JPEG_QUALITY = 85
CAMERAS = {
    ("store-a", "door"): "face-demographics-walking.gif",
    ("store-a", "till"): "head-pose-face-detection-female.gif",
    ("store-b", "door"): "face-demographics-walking-and-pause.gif",
    ("store-b", "aisle"): "head-pose-face-detection-male.gif",
}


def write_registry(
    path: Path, video_dir: Path, cameras: dict[tuple[str, str], str], loop: bool = False
) -> Path:
    lines = [
        "version: 1",
        "pipeline:",
        "  bucket: 10s",
        "  reclaim_idle: 1s",
        f"  jpeg_quality: {JPEG_QUALITY}",
        "stores:",
    ]
    for store in sorted({s for s, _ in cameras}):
        lines += [
            f"  - id: {store}",
            f"    branch: {store.split('-')[0]}",
            "    timezone: UTC",
            "    cameras:",
        ]
        for (s, camera), video in cameras.items():
            if s == store:
                lines += [
                    f"      - id: {camera}",
                    f"        source: {video_dir / video}",
                    f"        fps: {FPS}",
                ]
                lines += ["        loop: true"] if loop else []
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def expected_counts(shared_data: Path) -> dict[tuple[str, str], dict[str, int]]:
    """What `moodstream analyze --fps 4` finds in each camera's file (same sampler, same JPEG quality)."""
    analyzer = build_analyzer(AnalysisConfig())
    out = {}
    for key, video in CAMERAS.items():
        summary = analyze_file(shared_data / "video" / video, FPS, analyzer, JPEG_QUALITY)
        out[key] = {"frames": summary.frames, "faces": summary.faces, **summary.counts}
    return out


class Stages:
    """Starts stage processes through the real CLI and stops them at the end of the test."""

    def __init__(self, redis_url: str, database_url: str, prefix: str, registry: Path) -> None:
        self.env = stage_env(redis_url, database_url, prefix)
        self.registry = registry
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, command: str, *args: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "moodstream.cli.app", command, "-c", str(self.registry), *args]
        proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> list[int]:
        """SIGTERM every live stage, wait; return their exit codes (killed ones excluded)."""
        codes = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != -signal.SIGKILL:
                codes.append(proc.returncode)
        return codes


@pytest.fixture(autouse=True)
def same_server_kinds(request: pytest.FixtureRequest) -> None:
    """Run embedded+embedded and external+external; mixed pairs add time and no coverage here."""
    skip_mixed_server_kinds(request)


def counted(engine: Engine) -> dict[tuple[str, str], dict[str, int]]:
    t = tables.emotion_counts
    sums = [func.sum(t.c.frames), func.sum(t.c.faces), *(func.sum(getattr(t.c, e)) for e in EMOTIONS)]
    query = select(t.c.store_id, t.c.camera_id, *sums).group_by(t.c.store_id, t.c.camera_id)
    with engine.connect() as conn:
        return {
            (r[0], r[1]): dict(zip(("frames", "faces", *EMOTIONS), (int(v) for v in r[2:]), strict=True))
            for r in conn.execute(query)
        }


def total_frames(engine: Engine) -> int:
    return sum(v["frames"] for v in counted(engine).values())


def wait_for(condition: Callable[[], bool], timeout: float, what: str, stages: Stages) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    stages.stop_all()
    logs = "\n".join((p.stderr.read() if p.stderr else b"").decode()[-3000:] for p in stages.procs)
    pytest.fail(f"timed out waiting for {what}; stage logs:\n{logs}")


def test_two_stores_give_exactly_the_counts_of_analyze_and_bad_entries_go_dead(
    shared_data: Path,
    expected_counts: dict[tuple[str, str], dict[str, int]],
    redis_url: str,
    redis_prefix: str,
    migrated_database_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    bad_jpeg = FrameMessage(FrameKey("store-a", "door", 1, 0), int(time.time() * 1000), b"\xff\xd8garbage")
    client.xadd(names.frames, dict[Any, Any](bad_jpeg.encode()))
    client.xadd(names.frames, {"v": "1", "type": "frame", "store": "store-a"})
    registry = write_registry(tmp_path / "stores.yaml", shared_data / "video", CAMERAS)
    stages = Stages(redis_url, migrated_database_url, redis_prefix, registry)
    for command in ("aggregate", "classify", "detect", "ingest"):
        stages.start(command)
    want_frames = sum(v["frames"] for v in expected_counts.values())
    wait_for(lambda: total_frames(engine) >= want_frames, 150, f"{want_frames} frames counted", stages)
    time.sleep(1.0)  # anything beyond the expected frames would show up now
    assert stages.stop_all() == [0, 0, 0, 0]
    assert counted(engine) == expected_counts
    letters = [DeadLetter.decode(f) for _, f in xrange_all(client, names.dead)]
    reasons = sorted(letter.reason.split(" (")[0].split(":")[0] for letter in letters)
    assert reasons == ["malformed frame entry", "undecodable JPEG"]
    with engine.connect() as conn:
        losses = conn.execute(select(tables.frame_losses.c.camera_id, tables.frame_losses.c.dead)).all()
    assert [tuple(r) for r in losses] == [("door", 1)]
    client.close()
    status = subprocess.run(
        [sys.executable, "-m", "moodstream.cli.app", "status", "--json"],
        env=stages.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(status.stdout)
    progress = {c["label"]: (c["read"], c["counted"], c["lag"]) for c in report["cameras"]}
    assert progress == {f"{s}/{c}": (v["frames"], v["frames"], 0) for (s, c), v in expected_counts.items()}
    assert {s["store_id"]: s["frames"] for s in report["stores"]} == {
        store: sum(v["frames"] for (s, _), v in expected_counts.items() if s == store)
        for store in ("store-a", "store-b")
    }
    assert report["latency_ms"]["samples"] == sum(v["frames"] for v in expected_counts.values())


def _pending(client: redis.Redis, names: StreamNames) -> int:
    return pending_of_group(client, names.frames, "detector")


def test_detector_killed_with_entries_pending_every_frame_counted_once(
    shared_data: Path,
    redis_url: str,
    redis_prefix: str,
    migrated_database_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    cameras = {k: v for k, v in CAMERAS.items() if k[0] == "store-b"}
    registry = write_registry(tmp_path / "stores.yaml", shared_data / "video", cameras)
    stages = Stages(redis_url, migrated_database_url, redis_prefix, registry)
    ingest = stages.start("ingest")
    wait_for(
        lambda: bool(client.exists(names.frames)) and client.xlen(names.frames) >= 20, 60, "20 frames", stages
    )
    first = stages.start("detect", "--batch-size", "16")
    wait_for(lambda: _pending(client, names) > 0, 60, "detector A holding entries", stages)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    held = _pending(client, names)
    assert held > 0
    stages.start("classify")
    stages.start("aggregate")
    stages.start("detect")  # B reclaims A's entries once they are idle past reclaim_idle (1 s)

    def published() -> int:
        raw: Any = client.hgetall(names.stats("ingest"))
        return sum(int(v) for k, v in raw.items() if k.endswith(b":frames_out"))

    wait_for(lambda: ingest.poll() is None and published() > 0, 5, "ingest running", stages)
    wait_for(lambda: _ingest_finished(client, names), 60, "cameras finished", stages)
    total = published()
    wait_for(lambda: total_frames(engine) >= total, 120, f"{total} frames counted", stages)
    time.sleep(1.5)
    stages.stop_all()
    assert total_frames(engine) == total
    with engine.connect() as conn:
        applied = conn.scalar(select(func.count()).select_from(tables.applied_frames))
    assert applied == total
    assert client.xlen(names.dead) == 0
    client.close()


def _ingest_finished(client: redis.Redis, names: StreamNames) -> bool:
    states: Any = client.hgetall(names.cameras)
    return len(states) == 2 and all(json.loads(v)["state"] == "finished" for v in states.values())
