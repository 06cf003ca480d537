"""Recall of motion gating: faces found by the gated detector (ingest's MotionGate regions, the detector
on those regions only) against the full-frame detector, frame by frame.

A full-frame face counts as found when a gated face overlaps it with IoU >= 0.5. Clips: every video of
../shared/data/video (every frame, and sampled at 2 fps) and a long synthetic "mostly empty store" clip
(1080p, 2 fps, shoppers in view about 30% of the time; ``bench/synthetic_store.py``). Also prints the
share of frames searched whole, by regions and skipped, and the detector CPU time of both paths.

    python bench/bench_motion_recall.py                  # all clips, 10 min synthetic clip
    python bench/bench_motion_recall.py --synthetic-seconds 120 --no-shared
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_store import busy_fraction, store_clip

from moodstream.detector import DetectorConfig, Face, FaceDetector
from moodstream.ingest import MotionGate, sample_file
from moodstream.runtime.face_memory import RecentFaces, detect_remembering
from moodstream.runtime.frame_analysis import jpeg_round_trip
from moodstream.runtime.scene import SearchStats

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video"


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def found(full: list[Face], gated: list[Face]) -> int:
    """Full-frame faces matched by a gated face (IoU >= 0.5, each gated face used once)."""
    left = list(gated)
    hits = 0
    for face in full:
        best = max(left, key=lambda g: iou(face.box, g.box), default=None)
        if best is not None and iou(face.box, best.box) >= 0.5:
            hits += 1
            left.remove(best)
    return hits


def measure(
    name: str, frames: Iterable[tuple[float, np.ndarray]], detector: FaceDetector, full_frame_ms: int
) -> tuple[int, int]:
    """Print one clip's recall and search shares; return (full-frame faces, found by the gated path)."""
    gate = MotionGate(full_frame_ms=full_frame_ms)
    memory = RecentFaces()
    stats = SearchStats()
    total = hits = 0
    cpu_full = cpu_gated = 0.0
    for stamp, raw in frames:
        regions = gate.regions(raw, round(stamp))
        frame = jpeg_round_trip(raw, 85)
        start = time.process_time()
        full = detector.detect([frame])[0]
        cpu_full += time.process_time() - start
        start = time.process_time()
        found_now, _ = detect_remembering(
            detector, [frame], [regions], [1.0], ["c"], [round(stamp)], memory, stats
        )
        gated = found_now[0]
        cpu_gated += time.process_time() - start
        total += len(full)
        hits += found(full, gated)
    n = max(1, stats.frames)
    recall = hits / total if total else 1.0
    pixels = stats.searched_pixels / max(1, stats.frame_pixels)
    print(
        f"{name:48s} frames {stats.frames:5d}  faces {total:5d}  found {hits:5d}  "
        f"recall {100 * recall:6.2f}%  whole {100 * stats.whole / n:5.1f}%  "
        f"regions {100 * stats.gated / n:5.1f}%  skipped {100 * stats.skipped / n:5.1f}%  "
        f"pixels {100 * pixels:5.1f}%  detector cpu ms/frame full {1000 * cpu_full / n:6.1f} "
        f"gated {1000 * cpu_gated / n:6.1f}",
        flush=True,
    )
    return total, hits


def every_frame(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        yield index * 1000 / fps, frame
        index += 1
    capture.release()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthetic-seconds", type=float, default=600.0)
    parser.add_argument("--full-frame-seconds", type=float, default=30.0)
    parser.add_argument("--no-shared", action="store_true", help="skip the shared videos")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    detector = FaceDetector(DetectorConfig(intra_op_threads=args.threads))
    full_ms = round(args.full_frame_seconds * 1000)
    totals = []
    if not args.no_shared:
        if not DATA.is_dir():
            print(f"shared videos not found at {DATA}; skipped")
        else:
            for path in sorted(DATA.iterdir()):
                totals.append(measure(f"{path.name} (every frame)", every_frame(path), detector, full_ms))
                totals.append(measure(f"{path.name} (2 fps)", sample_file(path, 2.0), detector, full_ms))
    seconds, size = args.synthetic_seconds, (1920, 1080)
    share = busy_fraction(seconds, 2.0, size, 0.3, 1)
    name = f"synthetic store 1080p {seconds:.0f}s 2 fps ({100 * share:.0f}% busy)"
    totals.append(measure(name, store_clip(seconds, 2.0, size, 0.3, 1), detector, full_ms))
    total = sum(t for t, _ in totals)
    hits = sum(h for _, h in totals)
    share = 100 * hits / max(1, total)
    print(f"all clips: {hits}/{total} full-frame faces found by the gated detector: {share:.2f}%")


if __name__ == "__main__":
    main()
