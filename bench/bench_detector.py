"""Benchmark of the MTCNN `FaceDetector`: frames/s and ms/frame on two clips, batch sizes 1 and 8.

Frames are decoded up front (decoding is not timed); each configuration runs the whole clip once to
warm up, then ``--repeat`` timed passes, and the best pass is reported (the machine may be shared).
"cpu ms/frame" is the process CPU time of that pass per frame (all threads): on a machine shared with
other jobs it shows the work done, which wall-clock figures hide.

    python bench/bench_detector.py                       # CPU provider, 2 threads
    nice -n 0 python bench/bench_detector.py --repeat 5 --threads 2
    python bench/bench_detector.py --threads 1 --workers 2   # 2 threads as 2 frame workers
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from detector import DetectorConfig, FaceDetector

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video"
CLIPS = ["face-demographics-walking.gif", "facenet-pytorch-video.mp4"]


def read_frames(path: Path, limit: int | None) -> list[np.ndarray]:
    """Every frame of a clip (BGR uint8), up to ``limit``."""
    capture = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {path}")
    return frames


def timed_pass(detector: FaceDetector, frames: list[np.ndarray], batch: int) -> tuple[float, float, int]:
    """Wall seconds and process CPU seconds to detect every frame in batches of ``batch``; faces found."""
    start, start_cpu = time.perf_counter(), time.process_time()
    faces = 0
    for first in range(0, len(frames), batch):
        faces += sum(len(found) for found in detector.detect(frames[first : first + batch]))
    return time.perf_counter() - start, time.process_time() - start_cpu, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the clips")
    parser.add_argument("--clips", nargs="+", default=CLIPS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads per run")
    parser.add_argument(
        "--workers", type=int, default=1, help="frame_workers: threads sharing out the frames of a batch"
    )
    parser.add_argument("--providers", nargs="+", default=["cpu"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed passes per configuration (best is shown)"
    )
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of a clip")
    args = parser.parse_args()

    cv2.setNumThreads(args.threads)
    config = DetectorConfig(
        providers=args.providers, intra_op_threads=args.threads, frame_workers=args.workers
    )
    detector = FaceDetector(config)
    print(f"providers={detector.providers} threads={args.threads} workers={args.workers}", end=" ")
    print(f"repeat={args.repeat}")
    print(
        f"{'clip':40} {'size':>10} {'frames':>6} {'batch':>5} {'faces':>6} "
        f"{'frames/s':>9} {'ms/frame':>9} {'cpu ms/frame':>12}"
    )
    for clip in args.clips:
        frames = read_frames(args.data / clip, args.max_frames)
        height, width = frames[0].shape[:2]
        count = len(frames)
        for batch in args.batches:
            timed_pass(detector, frames, batch)  # warm-up
            best, cpu, faces = min(timed_pass(detector, frames, batch) for _ in range(args.repeat))
            print(
                f"{clip:40} {f'{width}x{height}':>10} {count:6d} {batch:5d} {faces:6d} "
                f"{count / best:9.1f} {1000 * best / count:9.2f} {1000 * cpu / count:12.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
