"""Benchmark of the whole streaming pipeline on the embedded servers (a benchmark, not a test).

For each camera count N, N cameras loop over the shared 480x270 videos (../shared/data/video/*.gif)
at ``--fps`` each, through ingest -> detector -> tracker -> classifier -> aggregator processes on an
embedded Redis and PostgreSQL (the classifier classifies only the votes of ended visits). After a
warm-up, it measures over ``--duration`` seconds:

* end-to-end frames/s and faces/s committed to PostgreSQL,
* capture -> commit latency p50/p95 (from the aggregator's per-frame latencies),
* frames shed by the stream cap, peak RSS of the stage processes plus the servers.

It also times the analysis alone (one process, the same models and threads: detection, tracking and
classification of the visits' votes, as ``moodstream analyze``) on the same frames (sampled at ``--fps``,
JPEG round trip), the reference for the "pipeline >= 80%" target; a
``--saturate`` run offers more frames than the models can take, so its frames/s is the pipeline's
capacity.

    python bench/bench_pipeline.py --cameras 1 4 8 --fps 2 --duration 30 --saturate
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from moodstream.cli.analyze import BATCH_FRAMES
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.clip_analysis import analyze_clip
from moodstream.runtime.database import create_database_engine, migrate, sync_registry
from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.processes import (
    GROUPS,
    RunOptions,
    options_from_registry,
    spawn_stage,
    stop_processes,
)
from moodstream.runtime.progress import drained
from moodstream.runtime.worker import WorkerConfig
from moodstream.schemas.defaults import STREAM_MAXLEN
from moodstream.schemas.registry import load_registry

VIDEOS = (
    "face-demographics-walking.gif",
    "face-demographics-walking-and-pause.gif",
    "head-pose-face-detection-female.gif",
    "head-pose-face-detection-male.gif",
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"


def write_registry(path: Path, cameras: int, fps: float, maxlen: int) -> Path:
    lines = ["version: 1", "pipeline:", "  bucket: 10s", f"  stream_maxlen: {maxlen}", "stores:"]
    for store in range((cameras + 1) // 2):
        lines += [f"  - id: store-{store}", "    branch: bench", "    timezone: UTC", "    cameras:"]
        for cam in range(2):
            index = store * 2 + cam
            if index < cameras:
                video = SHARED / VIDEOS[index % len(VIDEOS)]
                lines += [
                    f"      - id: cam-{cam}",
                    f"        source: {video}",
                    f"        fps: {fps}",
                    "        loop: true",
                ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _stage_sum(client: Any, names: StreamNames, stage: str, counter: str) -> int:
    raw = client.hgetall(names.stats(stage))
    return sum(int(v) for k, v in raw.items() if k.decode().endswith(f":{counter}"))


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            total += proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            continue
    return total / 2**20


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (0 when it is gone)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return float(sum(p.cpu_times().user + p.cpu_times().system for p in procs))
    except psutil.Error:
        return 0.0


def _stage_cpu(procs: list[Any], servers: list[int]) -> dict[str, float]:
    """CPU seconds so far per stage (processes of one stage summed) and of the servers."""
    out: dict[str, float] = {}
    for proc in procs:
        stage = proc.name.split("-")[0]
        out[stage] = out.get(stage, 0.0) + _cpu_seconds(proc.pid)
    out["servers"] = sum(_cpu_seconds(pid) for pid in servers)
    return out


def _stage_frames(client: Any, names: StreamNames) -> dict[str, int]:
    """Frames each stage has handled so far (the servers: frames committed)."""
    out = {
        stage: _stage_sum(client, names, stage, "frames_out")
        for stage in ("ingest", "detector", "tracker", "classifier")
    }
    out["aggregator"] = out["servers"] = _stage_sum(client, names, "aggregator", "frames_in")
    return {k: v for k, v in out.items() if k != "tracker" or v}


def _server_pids(redis_server: EmbeddedRedis, pgdata: Path) -> list[int]:
    pids = []
    for path in (redis_server.pidfile, pgdata / "postmaster.pid"):
        try:
            pids.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def hop_latencies(client: Any, names: StreamNames, since_ms: int) -> dict[str, dict[str, float]]:
    """p50/p95 (ms) of each hop for the frames captured from ``since_ms`` on, from the entry ids (Redis
    insertion ms) of the same frame on ``faces``, ``tracks`` and ``emotions``: capture -> faces (ingest,
    queue, detector), faces -> tracks (tracker, its reorder window), tracks -> emotions (classifier)."""
    from moodstream.schemas.messages import frame_key_if_readable

    published: dict[str, dict[Any, int]] = {}
    captured: dict[Any, int] = {}
    for stream in ("faces", "tracks", "emotions"):
        seen: dict[Any, int] = {}
        start = f"{since_ms}-0"
        while True:
            entries = client.xrange(getattr(names, stream), min=start, count=500)
            for entry_id, fields in entries:
                found = frame_key_if_readable(fields)
                if found is not None and found[1] >= since_ms:
                    seen.setdefault(found[0], int(entry_id.split(b"-")[0]))
                    captured[found[0]] = found[1]
            if len(entries) < 500:
                break
            start = "(" + entries[-1][0].decode()
        published[stream] = seen
    hops = {
        "capture->faces": [(published["faces"], None)],
        "faces->tracks": [(published["tracks"], published["faces"])],
        "tracks->emotions": [(published["emotions"], published["tracks"])],
    }
    out: dict[str, dict[str, float]] = {}
    for hop, [(after, before)] in hops.items():
        delays = [
            after[key] - (captured[key] if before is None else before[key])
            for key in after
            if before is None or key in before
        ]
        if delays:
            out[hop] = {
                "p50": round(float(np.percentile(delays, 50)), 0),
                "p95": round(float(np.percentile(delays, 95)), 0),
                "frames": len(delays),
            }
    return out


def run_pipeline(
    cameras: int,
    fps: float,
    args: argparse.Namespace,
    data_dir: Path,
    redis_server: EmbeddedRedis,
    postgres: EmbeddedPostgres,
) -> dict[str, Any]:
    """One measured run of the whole pipeline with ``cameras`` cameras at ``fps`` each."""
    redis_url = redis_server.start()
    database_url = postgres.start()
    registry_path = write_registry(data_dir / f"stores-{cameras}.yaml", cameras, fps, args.maxlen)
    registry = load_registry(registry_path)
    engine = create_database_engine(database_url)
    migrate(engine)
    sync_registry(engine, registry)
    prefix = f"bench-{cameras}-{int(fps)}-{int(time.time())}:"
    analysis = AnalysisConfig(intra_op_threads=args.threads)
    base = RunOptions(
        redis_url=redis_url, database_url=database_url, prefix=prefix, registry=registry_path,
        analysis=analysis, worker=WorkerConfig(batch_size=args.batch), log_level="WARNING",
    )  # fmt: skip
    options = options_from_registry(registry, base)
    names = StreamNames(prefix)
    client = connect_redis(redis_url)
    procs = [
        *spawn_stage("aggregator", options),
        *spawn_stage("classifier", options),
        *spawn_stage("tracker", options),
        *spawn_stage("detector", options, args.detectors),
        *spawn_stage("ingest", options),
    ]
    peak = 0.0
    try:
        time.sleep(args.warmup)
        client.delete(names.latency)
        measured_from = int(time.time() * 1000)
        frames0 = _stage_sum(client, names, "aggregator", "frames_in")
        faces0 = _stage_sum(client, names, "aggregator", "faces")
        shed0 = _stage_sum(client, names, "ingest", "shed")
        read0 = _stage_sum(client, names, "ingest", "frames_out")
        cpu0 = _stage_cpu(procs, _server_pids(redis_server, postgres.pgdata))
        done0 = _stage_frames(client, names)
        started = time.monotonic()
        while time.monotonic() - started < args.duration:
            pids = [p.pid for p in procs if p.pid] + _server_pids(redis_server, postgres.pgdata)
            peak = max(peak, _rss_mb(pids))
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        frames = _stage_sum(client, names, "aggregator", "frames_in") - frames0
        faces = _stage_sum(client, names, "aggregator", "faces") - faces0
        shed = _stage_sum(client, names, "ingest", "shed") - shed0
        read = _stage_sum(client, names, "ingest", "frames_out") - read0
        latencies = np.array([float(v) for v in client.lrange(names.latency, 0, -1)])
        cpu1 = _stage_cpu(procs, _server_pids(redis_server, postgres.pgdata))
        done1 = _stage_frames(client, names)
        hops = hop_latencies(client, names, measured_from)
    finally:
        stop_processes(procs)
        drained(client, names, GROUPS)
        client.close()
        engine.dispose()
    return {
        "cameras": cameras,
        "fps_per_camera": fps,
        "offered_fps": round(read / elapsed, 2),
        "frames_per_s": round(frames / elapsed, 2),
        "faces_per_s": round(faces / elapsed, 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 0) if latencies.size else None,
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 0) if latencies.size else None,
        "shed": shed,
        "cpu_ms_per_frame": {
            stage: round(1000 * (cpu1[stage] - cpu0.get(stage, 0.0)) / max(1, done1[stage] - done0[stage]), 1)
            for stage in done1
        },
        "cpu_ms_per_frame_total": round(
            sum(1000 * (cpu1[k] - cpu0.get(k, 0.0)) / max(1, done1[k] - done0[k]) for k in done1), 1
        ),
        "peak_rss_mb": round(peak, 0),
        "hops_ms": hops,
    }


def models_alone(fps: float, args: argparse.Namespace, seconds: float = 15.0) -> dict[str, Any]:
    """Detection, tracking and vote classification in one process on the same frames (sampled at fps,
    JPEG round trip included), clip by clip as ``moodstream analyze`` does."""
    from moodstream.ingest.sampling import sample_file

    clips = [list(sample_file(SHARED / v, fps)) for v in VIDEOS]
    analyzer = build_analyzer(AnalysisConfig(intra_op_threads=args.threads))
    analyze_clip(clips[0][:BATCH_FRAMES], analyzer)  # warm-up
    started = time.perf_counter()
    faces = frames = 0
    while time.perf_counter() - started < seconds or frames == 0:
        for clip in clips:
            faces += analyze_clip(clip, analyzer, batch=args.batch).faces
            frames += len(clip)
    elapsed = time.perf_counter() - started
    return {
        "frames": frames,
        "frames_per_s": round(frames / elapsed, 2),
        "faces_per_s": round(faces / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--fps", type=float, default=2.0, help="Sampling rate of each camera.")
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds per run.")
    parser.add_argument("--warmup", type=float, default=12.0, help="Seconds before measuring.")
    parser.add_argument("--detectors", type=int, default=1, help="Detector processes.")
    threads, batch = AnalysisConfig().intra_op_threads, WorkerConfig().batch_size
    parser.add_argument("--threads", type=int, default=threads, help="ONNX Runtime threads (0: auto).")
    parser.add_argument("--batch", type=int, default=batch, help="Worker batch size (XREADGROUP COUNT).")
    parser.add_argument("--maxlen", type=int, default=STREAM_MAXLEN, help="Stream cap (approximate MAXLEN).")
    parser.add_argument("--saturate", action="store_true", help="Add an 8-camera run at --saturate-fps each.")
    parser.add_argument(
        "--saturate-fps", type=float, default=5.0, help="Per-camera fps of the saturated run."
    )
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally blocks: stop stages and servers
    if not SHARED.is_dir():
        raise SystemExit(f"shared videos not found at {SHARED}")
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, no GPU")
    results: dict[str, Any] = {"pipeline": []}
    runs = [(n, args.fps) for n in args.cameras] + ([(8, args.saturate_fps)] if args.saturate else [])
    for cameras, fps in runs:
        # the machine is shared: measure the models alone right before each run, compare with that
        alone = models_alone(args.fps, args, seconds=12.0)
        print("analysis alone:", json.dumps(alone), flush=True)
        with tempfile.TemporaryDirectory(prefix="moodstream-bench-") as tmp:
            data_dir = Path(tmp)
            redis_server, postgres = EmbeddedRedis(data_dir), EmbeddedPostgres(data_dir)
            try:
                result = run_pipeline(cameras, fps, args, data_dir, redis_server, postgres)
            finally:
                redis_server.stop()
                postgres.delete_cluster()  # as root the cluster lives outside the temporary directory
        result["alone_frames_per_s"] = alone["frames_per_s"]
        result["ratio_to_alone"] = round(result["frames_per_s"] / alone["frames_per_s"], 2)
        results["pipeline"].append(result)
        print("pipeline:", json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
