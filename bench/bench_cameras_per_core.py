"""Cameras per core: 1080p cameras at 2 fps showing shoppers about 30% of the time and an empty store
otherwise (``bench/synthetic_store.py``), with motion gating on (the default) and off.

Three parts (``--parts``, all by default); every figure is CPU time (``time.process_time`` / psutil user +
system), not wall time, because the machine is shared; the load average is printed with them.

* ``detector``: detector CPU per 1080p frame: today's full-frame call (``FaceDetector.detect``), the
  same frame through the new path with no region (``detect_in_regions`` with ``None``: must cost the same),
  and a frame with motion in one region (one shopper: ingest's gate gives one region). Target: the
  one-region frame at most 1/4 of the full frame.
* ``stages``: every stage's handler in one process on the synthetic cameras (ingest's gate and JPEG
  encoding, the detector, tracker and classifier stages, the aggregator's fold; wire encoding between
  them): CPU ms per frame per stage and the cameras one core sustains at 2 fps (1000 ms / (2 x CPU ms per
  frame)). The camera's own video decoding is not included (printed separately: ms per decoded 1080p
  frame; a live camera decodes every frame it sends, not only the sampled ones).
* ``pipeline``: the real processes (``bench/bench_pipeline.py``'s runner: embedded Redis and PostgreSQL,
  ingest reading looping 1080p clips in real time) with ``--cameras`` cameras: frames/s committed, p95
  capture -> commit latency, frames shed, CPU ms per frame of every process and the servers.

    python bench/bench_cameras_per_core.py                                   # all parts
    python bench/bench_cameras_per_core.py --parts detector stages --seconds 120
    python bench/bench_cameras_per_core.py --parts pipeline --cameras 4 8 --duration 60
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_store import busy_fraction, store_clip

from moodstream.aggregator.buckets import fold_emotions
from moodstream.common.streams import StreamNames
from moodstream.detector import DetectorConfig, FaceDetector
from moodstream.ingest import MotionGate
from moodstream.runtime.demo import astronaut_bgr, paste_head, store_background
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.scene import CameraScene, SearchStats, detect_in_regions
from moodstream.runtime.stages.classifier import ClassifierStage
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.stages.tracker import TrackerStage
from moodstream.runtime.worker import Entry
from moodstream.schemas.jpeg import encode_jpeg
from moodstream.schemas.messages import EmotionsMessage, FrameKey, FrameMessage
from moodstream.schemas.registry import DetectionConfig
from moodstream.schemas.visit_config import ReorderConfig, VisitConfig

SIZE = (1920, 1080)
FPS = 2.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def cpu_ms(run: Callable[[], object], repeat: int) -> float:
    """Smallest process CPU time (ms) of ``repeat`` calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return 1000 * best


# ------------------------------------------------------------------------------------------- detector


def part_detector(args: argparse.Namespace) -> None:
    """Detector CPU per 1080p frame: full frame (today), the new path without region, one motion region."""
    detector = FaceDetector(DetectorConfig(intra_op_threads=args.threads))
    photo = astronaut_bgr()
    background = store_background(SIZE)
    before, frame = background.copy(), background.copy()
    paste_head(before, photo, 90, 700, 420)
    paste_head(frame, photo, 90, 780, 420)  # the shopper moved 80 px since the previous frame
    gate = MotionGate()
    gate.regions(background, 0)
    gate.regions(before, 500)
    regions = gate.regions(frame, 1000)
    assert regions, "the gate must see the moving shopper"
    detector.detect([frame])  # warm-up
    full = cpu_ms(lambda: detector.detect([frame]), args.repeat)
    same = cpu_ms(lambda: detect_in_regions(detector, [frame], [None], [1.0]), args.repeat)
    stats = SearchStats()
    gated = cpu_ms(lambda: detect_in_regions(detector, [frame], [regions], [1.0], stats), args.repeat)
    found = detect_in_regions(detector, [frame], [regions], [1.0])[0]
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in regions) / (SIZE[0] * SIZE[1])
    print(f"detector, one 1080p frame, {args.threads} thread(s); {load()}")
    print(f"  full frame, FaceDetector.detect (today)        {full:7.1f} ms CPU")
    print(f"  full frame, new path (no region)               {same:7.1f} ms CPU  ({same / full:.2f}x)")
    print(
        f"  motion in one region ({len(regions)} box, {100 * area:.1f}% of the frame) {gated:7.1f} ms CPU  "
        f"({gated / full:.3f}x of full; target <= 0.25); faces found {len(found)}"
    )


# --------------------------------------------------------------------------------------------- stages


def decode_ms(args: argparse.Namespace) -> float | None:
    """CPU ms per decoded frame of the shared 1080p clip (H.264), or None when it is absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "facenet-pytorch-video.mp4"
    if not path.is_file():
        return None
    capture = cv2.VideoCapture(str(path))
    start, frames = time.process_time(), 0
    while capture.grab():
        frames += 1
    capture.release()
    return 1000 * (time.process_time() - start) / max(1, frames)


class Timer:
    """CPU seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, run: Callable[..., Any], *args: Any) -> Any:
        start = time.process_time()
        out = run(*args)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start
        return out


def ingest_entry(gate: MotionGate | None, key: FrameKey, captured: int, frame: np.ndarray) -> Entry:
    """What ingest does per sampled frame: the motion gate's regions, JPEG encoding, the wire entry."""
    regions = None if gate is None else gate.regions(frame, captured)
    message = FrameMessage(key, captured, encode_jpeg(frame, 85), regions)
    return Entry(f"{next(_ENTRY_IDS)}-0", message.encode())


def fold_decoded(fields: list[Any]) -> object:
    """The aggregator's work before its SQL: decode the entries, fold them into bucket rows."""
    return fold_emotions([EmotionsMessage.decode(item) for item in fields], 10)


_ENTRY_IDS = iter(range(1, 1 << 62))


def entries(fields: list[Any], tag: int) -> list[Entry]:
    """Stream entries with ids never used before (the tracker holds entries by id)."""
    return [Entry(f"{next(_ENTRY_IDS)}-{tag}", item) for item in fields]


def run_stages(args: argparse.Namespace, motion: bool) -> tuple[dict[str, float], int, SearchStats]:
    """Every stage's handler on ``args.cameras_inproc`` synthetic cameras; CPU seconds per stage."""
    analyzer = build_analyzer(AnalysisConfig(intra_op_threads=args.threads))
    scene = CameraScene(detection=DetectionConfig(motion=motion))
    detector = DetectorStage(analyzer, lambda store, camera: scene)
    clock = [0.0]
    tracker = TrackerStage(lambda s, c: VisitConfig(), ReorderConfig(), lambda: clock[0])
    classifier = ClassifierStage(analyzer)
    counters = StageCounters("bench", StreamNames("test:"))
    timer = Timer()
    frames = 0
    start_ms = 1_767_225_600_000
    for camera in range(args.cameras_inproc):
        gate = MotionGate(full_frame_ms=30_000) if motion else None
        batch: list[Entry] = []
        for seq, (stamp, frame) in enumerate(store_clip(args.seconds, FPS, SIZE, 0.3, seed=camera + 1)):
            key = FrameKey("store", f"cam-{camera}", 1, seq)
            captured = start_ms + round(stamp)
            batch.append(timer("ingest (gate + JPEG)", ingest_entry, gate, key, captured, frame))
            frames += 1
            if len(batch) < args.batch:
                continue
            clock[0] = stamp / 1000
            faces = timer("detector", detector.handle, batch, counters).outputs
            tracks = timer("tracker", tracker.handle, entries(faces, 1), counters).outputs
            emotions = timer("classifier", classifier.handle, entries(tracks, 2), counters).outputs
            timer("aggregator (fold)", fold_decoded, emotions)
            batch = []
    return timer.seconds, frames, detector.stats


def part_stages(args: argparse.Namespace) -> None:
    share = busy_fraction(args.seconds, FPS, SIZE, 0.3, 1)
    decode = decode_ms(args)
    print(
        f"stages in one process: {args.cameras_inproc} synthetic 1080p cameras x {args.seconds:.0f} s at "
        f"2 fps (camera 1 busy {100 * share:.0f}% of its frames), {args.threads} ONNX thread(s); {load()}"
    )
    for motion in (False, True):
        seconds, frames, stats = run_stages(args, motion)
        total = 1000 * sum(seconds.values()) / frames
        print(f"  motion gating {'on ' if motion else 'off'}: {frames} frames")
        for name, value in seconds.items():
            print(f"    {name:24s} {1000 * value / frames:7.2f} ms CPU/frame")
        cameras = 1000 / (FPS * total)
        print(f"    {'total':24s} {total:7.2f} ms CPU/frame -> {cameras:5.1f} cameras per core at 2 fps")
        if motion:
            n = max(1, stats.frames)
            pixels = 100 * stats.searched_pixels / max(1, stats.frame_pixels)
            print(
                f"    searched: whole {100 * stats.whole / n:.1f}% of frames, regions "
                f"{100 * stats.gated / n:.1f}%, skipped {100 * stats.skipped / n:.1f}%; "
                f"{pixels:.1f}% of the pixels"
            )
    if decode is not None:
        print(
            f"  camera video decoding (not above): {decode:.1f} ms CPU per decoded 1080p H.264 frame "
            "(facenet-pytorch-video.mp4); a live camera decodes every frame it sends"
        )


# ------------------------------------------------------------------------------------------- pipeline


def write_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` synthetic 1080p clips (different shoppers) written as 2 fps MJPEG AVI files; clip ``i``
    lasts ``seconds + 7 * i`` s, so looping cameras do not all jump back to their start at once."""
    paths = []
    for seed in range(1, count + 1):
        path = folder / f"store-{seed}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, SIZE)
        for _, frame in store_clip(seconds + 7 * (seed - 1), FPS, SIZE, 0.3, seed):
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def part_pipeline(args: argparse.Namespace) -> None:
    import json
    import signal

    import bench_pipeline

    from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="moodstream-cpc-") as tmp:
        clips = write_clips(Path(tmp), args.clips or max(args.cameras), args.clip_seconds)
        for motion in args.motion:

            def registry(path: Path, cameras: int, fps: float, maxlen: int, motion: str = motion) -> Path:
                lines = ["version: 1", "pipeline:", "  bucket: 10s", f"  stream_maxlen: {maxlen}", "stores:"]
                lines += ["  - id: store", "    branch: bench", "    timezone: UTC", "    cameras:"]
                for index in range(cameras):
                    lines += [
                        f"      - id: cam-{index}",
                        f"        source: {clips[index % len(clips)]}",
                        f"        fps: {fps}",
                        "        loop: true",
                        f"        detection: {{motion: {motion}}}",
                    ]
                path.write_text("\n".join(lines) + "\n")
                return path

            bench_pipeline.write_registry = registry  # the runner writes its registry through this
            for cameras in args.cameras:
                data_dir = Path(tmp) / f"run-{motion}-{cameras}"
                data_dir.mkdir()
                redis_server, postgres = EmbeddedRedis(data_dir), EmbeddedPostgres(data_dir)
                try:
                    result = bench_pipeline.run_pipeline(cameras, FPS, args, data_dir, redis_server, postgres)
                finally:
                    redis_server.stop()
                    postgres.stop()
                cpu = result["cpu_ms_per_frame_total"]
                result["cameras_per_core"] = round(1000 / (FPS * cpu), 1) if cpu else None
                result["motion"] = motion
                result["load"] = load()
                print("pipeline:", json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", default=["detector", "stages", "pipeline"])
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--repeat", type=int, default=5, help="detector part: timed calls (best kept)")
    parser.add_argument("--seconds", type=float, default=300.0, help="stages part: seconds per camera")
    parser.add_argument("--cameras-inproc", type=int, default=2, help="stages part: synthetic cameras")
    parser.add_argument("--batch", type=int, default=8, help="frames per stage batch")
    parser.add_argument("--cameras", type=int, nargs="+", default=[4, 8], help="pipeline part: camera counts")
    parser.add_argument("--motion", nargs="+", default=["true", "false"], choices=["true", "false"])
    parser.add_argument("--duration", type=float, default=60.0, help="pipeline part: measured seconds")
    parser.add_argument("--warmup", type=float, default=20.0, help="pipeline part: seconds before measuring")
    parser.add_argument("--clip-seconds", type=float, default=120.0, help="pipeline part: clip length")
    parser.add_argument(
        "--clips",
        type=int,
        default=0,
        help="pipeline part: distinct clips, shared round-robin by the cameras (0: one per camera, so "
        "cameras are independent; 4 reproduces the first runs, where 4 cameras showed the same shoppers "
        "at the same moment)",
    )
    parser.add_argument("--detectors", type=int, default=1, help="pipeline part: detector processes")
    parser.add_argument("--maxlen", type=int, default=2000, help="pipeline part: stream cap")
    args = parser.parse_args()
    for part in args.parts:
        {"detector": part_detector, "stages": part_stages, "pipeline": part_pipeline}[part](args)


if __name__ == "__main__":
    main()
