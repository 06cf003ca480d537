"""bench/gpu_check.py where no GPU is: bad arguments are refused with exit 2 and a clear message, and GPU
configurations whose execution providers are not installed are reported as skipped while the CPU reference
still runs (exit 0), or fail the check with --require-gpu (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.py"
NO_GPU = "CUDAExecutionProvider" not in ort.get_available_providers()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--batches", "0"], "batch size 0 is out of range 1-256"),
        (["--batches", "eight"], "'eight' is not a batch size"),
        (["--sizes", "1920by1080"], "'1920by1080' is not a frame size; write WIDTHxHEIGHT"),
        (["--sizes", "16x16"], "width and height must be 32-8192 pixels"),
        (["--frames", "0"], "--frames 0 is out of range 1-4096"),
        (["--min-parity", "1.5"], "--min-parity 1.5 is out of range 0-1"),
        (["--configs", "rocm"], "invalid choice: 'rocm'"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args: list[str], words: str) -> None:
    done = run(*args)
    assert done.returncode == 2 and words in done.stderr, done.stderr


@pytest.mark.skipif(not NO_GPU, reason="checks the fallback on a machine without CUDA")
def test_missing_gpu_providers_are_skipped_and_the_cpu_reference_runs(tmp_path: Path) -> None:
    small = ["--sizes", "96x64", "--batches", "1", "2", "--frames", "2", "--json", str(tmp_path / "g.json")]
    done = run("--configs", "cuda", "tensorrt-fp16", *small)
    assert done.returncode == 0, done.stderr
    assert "cuda: skipped: CUDAExecutionProvider is not installed here" in done.stdout
    assert "tensorrt-fp16: skipped: TensorrtExecutionProvider is not installed here" in done.stdout
    figures = json.loads((tmp_path / "g.json").read_text())
    assert set(figures["configs"]["cpu"]["speed"]["96x64"]) == {"1", "2"}
    assert figures["configs"]["cpu"]["providers_used"]["detector"] == ["CPUExecutionProvider"]
    required = run(
        "--configs", "cuda", "--require-gpu", "--sizes", "96x64", "--batches", "1", "--frames", "1"
    )
    assert (
        required.returncode == 1 and "problem: cuda: CUDAExecutionProvider not installed" in required.stdout
    )
