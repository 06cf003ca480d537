"""Benchmark of the MTCNN `FaceDetector`: frames/s and ms/frame on two clips, batch sizes 1 and 8.

Frames are decoded up front (decoding is not timed); each configuration runs the whole clip once to
warm up, then ``--repeat`` timed passes, and the best pass is reported (the machine may be shared).
"cpu ms/frame" is the process CPU time of that pass per frame (all threads): on a machine shared with
other jobs it shows the work done, which wall-clock figures hide.

Each figure is printed for two ways of using 2 threads (``--setups``, THREADSxWORKERS):
2 ONNX Runtime intra-op threads in one worker ("2x1"), and 2 frame workers of 1 intra-op thread each
("1x2": a batch's frames are shared out between the workers; a single frame's pyramid levels and
R-Net/O-Net runs are).

    python bench/bench_detector.py                       # CPU provider, setups 2x1 and 1x2
    python bench/bench_detector.py --setups 1x2 --repeat 5 --batches 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from moodstream.detector import DetectorConfig, FaceDetector

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
    parser.add_argument(
        "--setups",
        nargs="+",
        type=parse_setup,
        default=[(2, 1), (1, 2)],
        help="THREADSxWORKERS: ONNX Runtime intra-op threads per run x frame_workers (default: 2x1 1x2)",
    )
    parser.add_argument("--providers", nargs="+", default=["cpu"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed passes per configuration (best is shown)"
    )
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of a clip")
    args = parser.parse_args()

    print(f"providers={args.providers} repeat={args.repeat}")
    print(
        f"{'clip':40} {'size':>10} {'frames':>6} {'setup':>5} {'batch':>5} {'faces':>6} "
        f"{'frames/s':>9} {'ms/frame':>9} {'cpu ms/frame':>12}"
    )
    clips = [(clip, read_frames(args.data / clip, args.max_frames)) for clip in args.clips]
    for threads, workers in args.setups:
        cv2.setNumThreads(threads)
        config = DetectorConfig(providers=args.providers, intra_op_threads=threads, frame_workers=workers)
        with FaceDetector(config) as detector:
            for clip, frames in clips:
                for batch in args.batches:
                    print_figures(detector, clip, frames, batch, f"{threads}x{workers}", args.repeat)


def parse_setup(text: str) -> tuple[int, int]:
    """ "2x1" -> (2 intra-op threads, 1 frame worker)."""
    try:
        threads, workers = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected THREADSxWORKERS such as 1x2, got {text!r}") from None
    return threads, workers


def print_figures(
    detector: FaceDetector, clip: str, frames: list[np.ndarray], batch: int, setup: str, repeat: int
) -> None:
    """One warm-up pass, then the best of ``repeat`` timed passes as a table row."""
    height, width = frames[0].shape[:2]
    timed_pass(detector, frames, batch)
    best, cpu, faces = min(timed_pass(detector, frames, batch) for _ in range(repeat))
    count = len(frames)
    print(
        f"{clip:40} {f'{width}x{height}':>10} {count:6d} {setup:>5} {batch:5d} {faces:6d} "
        f"{count / best:9.1f} {1000 * best / count:9.2f} {1000 * cpu / count:12.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
