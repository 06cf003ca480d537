"""Capacity of the center in store-edge mode (a benchmark, not a test): how many result entries per second
one central Redis and one aggregator take, and what that means in stores and cameras.

Result entries are what store boxes forward: ``emotions`` entries (per-frame counts; visits that ended at
the frame with their votes), generated with a realistic mix (``--faces-share`` of frames show faces, a visit
ends every ``--frames-per-visit`` frames of a camera). Two measurements on the embedded servers (or the
servers named by MOODSTREAM_REDIS_URL / MOODSTREAM_DATABASE_URL):

1. central Redis: ``--forwarders`` threads write ``--entries`` entries the way the forwarder does (MULTI of
   XADD MAXLEN~ batches of ``--batch`` plus the last-forward HSET); entries/s and the Redis server's CPU
   seconds per 10,000 entries (INFO cpu), the figure that holds on a loaded machine;
2. aggregator: the real worker loop and ``AggregatorStage`` (one process, ``--aggregator-batch`` entries per
   XREADGROUP) drain the stream into PostgreSQL; entries/s and the CPU seconds of the aggregator (this
   process), PostgreSQL and Redis per 10,000 entries.

Capacity in cameras = entries/s / ``--fps`` (one entry per sampled frame); in stores, divided by
``--cameras-per-store``.

    python bench/bench_forwarding.py --entries 40000 --forwarders 4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.database import create_database_engine, migrate, sync_registry
from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from moodstream.runtime.stages import AggregatorStage
from moodstream.runtime.stages.forwarder import last_forward_key
from moodstream.runtime.worker import StreamWorker, WorkerConfig
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import ClassifiedVote, EmotionsMessage, FrameKey, VisitEmotion
from moodstream.schemas.registry import load_registry

EPOCH = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def write_registry(path: Path, stores: int, cameras: int) -> Path:
    lines = ["version: 1", "pipeline:", "  bucket: 60s", "stores:"]
    for s in range(stores):
        lines += [f"  - id: store-{s}", "    branch: bench", "    timezone: UTC", "    cameras:"]
        lines += [f"      - {{id: cam-{c}, source: 'rtsp://192.0.2.1/s{c}', fps: 2}}" for c in range(cameras)]
    path.write_text("\n".join(lines) + "\n")
    return path


def make_entries(args: argparse.Namespace) -> list[dict[bytes, bytes]]:
    """``--entries`` emotions entries, round robin over the stores' cameras at ``--fps``."""
    rng = random.Random(7)
    cameras = [(f"store-{s}", f"cam-{c}") for s in range(args.stores) for c in range(args.cameras_per_store)]
    out = []
    for i in range(args.entries):
        store, camera = cameras[i % len(cameras)]
        seq = i // len(cameras)
        ts = EPOCH + int(seq * 1000 / args.fps)
        faces = rng.choice((1, 1, 2, 3)) if rng.random() < args.faces_share else 0
        visits: tuple[VisitEmotion, ...] = ()
        votes: tuple[ClassifiedVote, ...] = ()
        if seq and seq % args.frames_per_visit == 0:
            probs = _probs(rng)
            votes = tuple(ClassifiedVote(ts - k * 500, _probs(rng)) for k in range(3))
            visits = (VisitEmotion(ts - 8000, ts, 12, 5, probs),)
        message = EmotionsMessage(FrameKey(store, camera, EPOCH, seq), ts, faces, faces, votes, visits)
        out.append(message.encode())
    return out


def _probs(rng: random.Random) -> tuple[float, ...]:
    raw = [rng.random() for _ in EMOTIONS]
    total = sum(raw)
    return tuple(v / total for v in raw)


def redis_cpu(client: redis.Redis) -> float:
    info: Any = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def bench_central_redis(client: redis.Redis, names: StreamNames, entries: list[dict[bytes, bytes]],
                        args: argparse.Namespace) -> dict[str, float]:  # fmt: skip
    """Forwarder-style writes from ``--forwarders`` threads; entries/s and Redis CPU per 10k entries."""
    shares = [entries[i :: args.forwarders] for i in range(args.forwarders)]

    def forward(share: list[dict[bytes, bytes]], store: str) -> None:
        own = connect_redis(args.redis_url)
        for start in range(0, len(share), args.batch):
            pipe = own.pipeline(transaction=True)
            for fields in share[start : start + args.batch]:
                pipe.xadd(names.emotions, fields, maxlen=args.central_maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.hset(last_forward_key(names), store, int(time.time() * 1000))
            pipe.execute()
        own.close()

    cpu0, wall0 = redis_cpu(client), time.perf_counter()
    threads = [threading.Thread(target=forward, args=(s, f"store-{i}")) for i, s in enumerate(shares)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - wall0, redis_cpu(client) - cpu0
    return {
        "entries": len(entries),
        "entries_per_s": round(len(entries) / wall),
        "redis_cpu_s_per_10k": round(cpu / len(entries) * 10_000, 3),
        "entries_per_redis_cpu_s": round(len(entries) / cpu) if cpu else 0.0,
    }


def _cpu_of(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return float(sum(p.cpu_times().user + p.cpu_times().system for p in procs))
    except psutil.Error:
        return 0.0


def bench_aggregator(client: redis.Redis, names: StreamNames, engine: Any, postgres_pid: int | None,
                     total: int, args: argparse.Namespace) -> dict[str, float]:  # fmt: skip
    """Drain the central emotions stream with the real aggregator; entries/s and CPU per 10k entries."""
    config = WorkerConfig(batch_size=args.aggregator_batch, block_ms=100)
    stage = AggregatorStage(engine, 60, client, names)
    worker = StreamWorker(client, args.redis_url, names, stream=names.emotions, group="aggregator",
                          handler=stage, output_stream=None, config=config)  # fmt: skip
    stop = threading.Event()
    pg0 = _cpu_of(postgres_pid) if postgres_pid else 0.0
    rd0, me0, wall0 = redis_cpu(client), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while worker.processed < total:
        time.sleep(0.05)
    wall = time.perf_counter() - wall0
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    rd, pg = redis_cpu(client) - rd0, (_cpu_of(postgres_pid) - pg0) if postgres_pid else float("nan")
    stop.set()
    thread.join()
    own = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
    per10k = 10_000 / total
    return {
        "entries": total,
        "batch": args.aggregator_batch,
        "entries_per_s": round(total / wall),
        "aggregator_cpu_s_per_10k": round(own * per10k, 3),
        "postgres_cpu_s_per_10k": round(pg * per10k, 3),
        "redis_cpu_s_per_10k": round(rd * per10k, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=40_000)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--cameras-per-store", type=int, default=8)
    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per camera and second")
    parser.add_argument("--faces-share", type=float, default=0.3)
    parser.add_argument("--frames-per-visit", type=int, default=20)
    parser.add_argument("--forwarders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="entries per forwarder MULTI (as `forward`)")
    parser.add_argument("--aggregator-batch", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--central-maxlen", type=int, default=10_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp:
        redis_server = postgres_server = None
        args.redis_url = os.environ.get("MOODSTREAM_REDIS_URL")
        database_url = os.environ.get("MOODSTREAM_DATABASE_URL")
        postgres_pid = None
        if not args.redis_url:
            redis_server = EmbeddedRedis(Path(tmp))
            args.redis_url = redis_server.start()
        if not database_url:
            postgres_server = EmbeddedPostgres(Path(tmp))
            database_url = postgres_server.start()
            postgres_pid = int((postgres_server.pgdata / "postmaster.pid").read_text().split()[0])
        try:
            engine = create_database_engine(database_url)
            migrate(engine)
            sync_registry(engine, load_registry(write_registry(Path(tmp) / "s.yaml", args.stores,
                                                               args.cameras_per_store)))  # fmt: skip
            client = connect_redis(args.redis_url)
            entries = make_entries(args)
            size = sum(len(k) + len(v) for e in entries for k, v in e.items()) / len(entries)
            report: dict[str, Any] = {
                "load_avg_1m": os.getloadavg()[0],
                "cpu_count": os.cpu_count(),
                "entry_bytes_mean": round(size),
                "redis": (client.info("server") or {}).get("redis_version"),
                "aggregator": [],
            }
            for batch in args.aggregator_batch:
                names = StreamNames(f"bench-{batch}:")
                report["central_redis"] = bench_central_redis(client, names, entries, args)
                args.aggregator_batch = batch
                report["aggregator"].append(bench_aggregator(client, names, engine, postgres_pid,
                                                             len(entries), args))  # fmt: skip
                with engine.begin() as conn:
                    conn.exec_driver_sql("TRUNCATE emotion_counts, applied_frames")
            best = max(a["entries_per_s"] for a in report["aggregator"])
            bound = min(best, report["central_redis"]["entries_per_s"])
            report["capacity"] = {
                "bound_entries_per_s": bound,
                "cameras": round(bound / args.fps),
                "stores": round(bound / args.fps / args.cameras_per_store),
                "assumes": f"{args.fps} frames/s per camera, {args.cameras_per_store} cameras per store",
            }
            print(json.dumps(report, indent=2))
            client.close()
            engine.dispose()
        finally:
            if redis_server is not None:
                redis_server.stop()
            if postgres_server is not None:
                postgres_server.stop()


if __name__ == "__main__":
    main()
