"""End to end: stage processes (`moodstream ingest|detect|track|classify|aggregate`) on real Redis and
PostgreSQL.

* two stores with two cameras each on the shared videos give exactly the visits (count, readable, per
  emotion, dwell) and face counts `moodstream analyze` gives for the same files and sampling, with 1, 2 and
  3 detector workers (the tracker's reorder window undoes their out-of-order finishing); one camera's gate
  lets no face through: its visits are unreadable and its satisfaction per visit is NULL, not negative;
  an undecodable JPEG and a malformed entry land in ``dead``;
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
from sqlalchemy import Engine, func, select, text

from moodstream.cli.analyze import analyze_file
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.schemas import tables
from moodstream.schemas.messages import DeadLetter, FrameKey, FrameMessage
from moodstream.schemas.registry import load_registry
from tests.integration.helpers import pending_of_group, skip_mixed_server_kinds, stage_env, xrange_all

FPS = 4.0
JPEG_QUALITY = 85
CAMERAS = {
    ("store-a", "door"): "face-demographics-walking.gif",
    ("store-a", "till"): "head-pose-face-detection-female.gif",
    ("store-b", "door"): "face-demographics-walking-and-pause.gif",
    ("store-b", "aisle"): "head-pose-face-detection-male.gif",
}
UNREADABLE = ("store-b", "aisle")
"""Its gate asks for faces of 1000 px: every visit of it is unreadable."""
COLUMNS = (
    "frames", *tables.VISIT_COUNT_COLUMNS, "dwell_seconds_sum", *tables.DWELL_COLUMNS,
    *tables.FACE_COUNT_COLUMNS,
)  # fmt: skip


def write_registry(
    path: Path,
    video_dir: Path,
    cameras: dict[tuple[str, str], str],
    loop: bool = False,
    reclaim_idle: str = "1s",
) -> Path:
    """A registry of ``cameras``; a long reorder wait and idle flush, so that on a starved machine no frame
    comes late and no camera looks idle in the middle of its clip (either would change the visits)."""
    lines = [
        "version: 1",
        "pipeline:",
        "  bucket: 10s",
        f"  reclaim_idle: {reclaim_idle}",
        f"  jpeg_quality: {JPEG_QUALITY}",
        "  reorder: {max_frames: 256, max_wait_seconds: 60, idle_flush_seconds: 20}",
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
                lines += (
                    ["        visits: {gate: {min_face_size: 1000}}"] if (s, camera) == UNREADABLE else []
                )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def expected_counts(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], dict[str, float]]:
    """What `moodstream analyze --fps 4 -c stores.yaml --camera S/C` finds in each camera's file (same
    sampler, same JPEG quality, same visit settings), as emotion_counts sums."""
    registry = load_registry(
        write_registry(tmp_path_factory.mktemp("r") / "s.yaml", shared_data / "video", CAMERAS)
    )
    analyzer = build_analyzer(AnalysisConfig())
    out = {}
    for key, video in CAMERAS.items():
        summary = analyze_file(
            shared_data / "video" / video, FPS, analyzer, JPEG_QUALITY, config=registry.visit_config(*key)
        )
        data = summary.as_json()
        visits, faces = data["visits"], data["faces"]
        out[key] = {
            "frames": data["frames"],
            "visits": visits["count"],
            "readable_visits": visits["readable"],
            **{f"visits_{e}": n for e, n in visits["emotions"].items()},
            "dwell_seconds_sum": visits["dwell_seconds_sum"],
            **visits["dwell_histogram"],
            "faces": faces["detected"],
            "readable_faces": faces["readable"],
            **{f"faces_{e}": n for e, n in faces["emotions"].items()},
        }
    assert out[UNREADABLE]["visits"] > 0 and out[UNREADABLE]["readable_visits"] == 0
    assert sum(v["readable_visits"] for v in out.values()) > 0
    return out


class Stages:
    """Starts stage processes through the real CLI and stops them at the end of the test."""

    def __init__(self, redis_url: str, database_url: str, prefix: str, registry: Path) -> None:
        self.env = stage_env(redis_url, database_url, prefix)
        self.registry = registry
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, command: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a stage; its log goes to a file (a pipe nobody reads would fill and block it)."""
        argv = [sys.executable, "-m", "moodstream.cli.app", command, "-c", str(self.registry), *args]
        path = self.registry.parent / f"{command}-{len(self.procs)}.log"
        with path.open("wb") as log:
            proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(proc)
        self.logs.append(path)
        return proc

    def tail(self) -> str:
        """The end of every stage's log."""
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs)

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


def counted(engine: Engine) -> dict[tuple[str, str], dict[str, float]]:
    t = tables.emotion_counts
    query = select(t.c.store_id, t.c.camera_id, *(func.sum(t.c[c]) for c in COLUMNS)).group_by(
        t.c.store_id, t.c.camera_id
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = {}
    for row in rows:
        values = dict(zip(COLUMNS, row[2:], strict=True))
        out[(row[0], row[1])] = {
            k: round(float(v), 3) if k == "dwell_seconds_sum" else int(v) for k, v in values.items()
        }
    return out


def counted_visits(engine: Engine) -> int:
    return sum(int(v["visits"]) for v in counted(engine).values())


def total_frames(engine: Engine) -> int:
    return sum(v["frames"] for v in counted(engine).values())


def wait_for(condition: Callable[[], bool], timeout: float, what: str, stages: Stages) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    stages.stop_all()
    pytest.fail(f"timed out waiting for {what}; stage logs:\n{stages.tail()}")


def started(client: redis.Redis, names: StreamNames, stages: int) -> bool:
    """Every worker started so far beats (models loaded); ingest starts after them."""
    return len(list(client.scan_iter(match=names.heartbeat_pattern()))) >= stages


@pytest.mark.parametrize("detectors", [1, 2, 3])
def test_two_stores_give_exactly_the_visits_of_analyze_with_any_number_of_detectors(
    detectors: int,
    shared_data: Path,
    expected_counts: dict[tuple[str, str], dict[str, float]],
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
    client.xadd(names.frames, {"v": "2", "type": "frame", "store": "store-a"})
    registry = write_registry(tmp_path / "stores.yaml", shared_data / "video", CAMERAS, reclaim_idle="30s")
    stages = Stages(redis_url, migrated_database_url, redis_prefix, registry)
    for command in ("aggregate", "classify", "track", *["detect"] * detectors):
        stages.start(command)
    wait_for(lambda: started(client, names, 3 + detectors), 120, "workers started", stages)
    stages.start("ingest")
    want_frames = sum(int(v["frames"]) for v in expected_counts.values())
    want_visits = sum(int(v["visits"]) for v in expected_counts.values())
    wait_for(
        lambda: total_frames(engine) >= want_frames and counted_visits(engine) >= want_visits,
        180,
        f"{want_frames} frames and {want_visits} visits counted",
        stages,
    )
    time.sleep(1.0)  # anything beyond the expected frames would show up now
    status = subprocess.run(
        [sys.executable, "-m", "moodstream.cli.app", "status", "--json"],
        env=stages.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert stages.stop_all() == [0] * (4 + detectors), stages.tail()
    got = counted(engine)
    exact = COLUMNS if detectors == 1 else ("frames", *tables.VISIT_COUNT_COLUMNS)
    differ = {
        cam: {k: (got.get(cam, {}).get(k), want[k]) for k in exact if got.get(cam, {}).get(k) != want[k]}
        for cam, want in expected_counts.items()
    }
    assert not any(differ.values()), {cam: d for cam, d in differ.items() if d}  # (pipeline, analyze)
    if detectors > 1:
        # Each detector remembers only the faces it found itself (runtime/face_memory.py): a face that
        # never moves may be missed in a frame another worker handles, never found twice. Visits are
        # exact (not searched is not missed); per-face counts and dwell may only fall short.
        for cam, want in expected_counts.items():
            for k in (*tables.FACE_COUNT_COLUMNS, "dwell_seconds_sum"):
                assert 0.75 * want[k] <= got[cam][k] <= want[k], (cam, k, got[cam][k], want[k])
    late: Any = client.hgetall(names.stats("tracker"))
    assert not [k for k in late if k.endswith(b":frames_late")], "no frame may miss the reorder window here"
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT visits, readable_visits, visit_satisfaction_index FROM emotion_counts_v "
                 "WHERE store_id = :s AND camera_id = :c"),
            {"s": UNREADABLE[0], "c": UNREADABLE[1]},
        ).all()  # fmt: skip
    assert sum(r[0] for r in rows) > 0 and all(r[1] == 0 and r[2] is None for r in rows), rows
    letters = [DeadLetter.decode(f) for _, f in xrange_all(client, names.dead)]
    reasons = sorted(letter.reason.split(" (")[0].split(":")[0] for letter in letters)
    assert reasons == ["malformed frame entry", "undecodable JPEG"]
    with engine.connect() as conn:
        losses = conn.execute(select(tables.frame_losses.c.camera_id, tables.frame_losses.c.dead)).all()
    assert [tuple(r) for r in losses] == [("door", 1)]
    client.close()
    report = json.loads(status.stdout)
    progress = {c["label"]: (c["read"], c["counted"], c["lag"]) for c in report["cameras"]}
    assert progress == {f"{s}/{c}": (v["frames"], v["frames"], 0) for (s, c), v in expected_counts.items()}
    stores = {s["store_id"]: (s["frames"], s["visits"]) for s in report["stores"]}
    assert stores == {
        store: (
            sum(v["frames"] for (s, _), v in expected_counts.items() if s == store),
            sum(v["visits"] for (s, _), v in expected_counts.items() if s == store),
        )
        for store in ("store-a", "store-b")
    }
    assert report["latency_ms"]["samples"] == want_frames


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
    stages.start("track")
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
