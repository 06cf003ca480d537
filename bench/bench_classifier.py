"""Speed of every shipped FER model on ONNX Runtime (a benchmark, not a test).

For each model and batch size, classifies random crops of the model's input size for ``--seconds``
and prints faces/s, milliseconds per batch (median) and milliseconds per face. Run on a quiet machine
for figures worth recording in BENCHMARKS.md; state the machine and its load beside them.

    python bench/bench_classifier.py --batch-sizes 1 8 32 --threads 2 --seconds 5
    python bench/bench_classifier.py --batch-sizes 1 --threads 1 --models vgg-fer-v2   # cost per face
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from moodstream.classifier import SHIPPED_MODELS, ClassifierConfig, EmotionClassifier


def bench(name: str, batch: int, threads: int, seconds: float) -> tuple[float, float, float]:
    """(faces per second, median ms per batch, CPU ms per face) of model ``name`` (name or manifest path).

    CPU ms per face is the process CPU time over the faces classified: on a busy machine it stays close
    to the quiet-machine cost, where wall-clock figures grow with the load.
    """
    clf = EmotionClassifier(ClassifierConfig(model=name, batch_size=batch, intra_op_threads=threads))
    width, height = clf.input_size
    shape = (height, width) if clf.color == "gray" else (height, width, 3)
    crops = list(np.random.default_rng(0).integers(0, 256, (batch, *shape), dtype=np.uint8))
    clf.predict(crops)  # warm-up
    times: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        clf.predict(crops)
        times.append(time.perf_counter() - t0)
    cpu_ms = 1000 * (time.process_time() - cpu_started) / (batch * len(times))
    return batch * len(times) / sum(times), 1000 * statistics.median(times), cpu_ms


def main() -> None:
    """Print one line per (model, batch size)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case")
    parser.add_argument(
        "--models", nargs="+", default=list(SHIPPED_MODELS), help="shipped names or manifest paths"
    )
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(
        f"# {machine}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}, {args.threads} thread(s)"
    )
    for name in args.models:
        for batch in args.batch_sizes:
            rate, ms, cpu_ms = bench(name, batch, args.threads, args.seconds)
            print(
                f"{name:24s} batch {batch:4d}: {rate:8.0f} faces/s  {ms:8.2f} ms/batch (median)  "
                f"{ms / batch:6.2f} ms/face  {cpu_ms:6.2f} CPU ms/face"
            )


if __name__ == "__main__":
    main()
