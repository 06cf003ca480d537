"""GPU check: the detector and the classifier on ONNX Runtime's TensorRT and CUDA execution providers,
their parity with the CPU results, and their speed at several batch sizes and frame sizes.

Run it on a machine with an NVIDIA GPU, from the repository root:

    python bench/gpu_check.py --install            # pip install -e .[gpu] first, then check
    python bench/gpu_check.py --batches 1 8 32 --sizes 480x270 1920x1080 --json gpu.json

Each configuration runs in its own process (TensorRT options are process-wide environment variables):
``cpu`` (the reference), ``cuda`` (FP32), ``tensorrt`` (FP32) and ``tensorrt-fp16``. TensorRT engines
are cached on disk (``--engine-cache``, default ``.moodstream/trt-cache``), so a second run starts in
seconds. A configuration whose providers are not installed is reported as skipped, and one whose session
fell back to another provider says so (provider fallback); ``--require-gpu`` turns either into exit 1.

Parity with the CPU: detector faces matched by IoU >= 0.5 (recall and precision, mean box error in px),
classifier argmax agreement and largest probability difference. FP16 is recommended only where parity
holds (``--min-parity``, default 0.99 for faces found and labels agreeing). Speed: frames/s and faces/s
of the detector and crops/s of the classifier at each batch size (after one warm-up call; wall time,
the GPU does the work).

Exit codes: 0 ok; 1 a required GPU provider missing or fallen back, or parity below the bar; 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
CONFIGS: dict[str, tuple[list[str], bool]] = {
    "cpu": (["cpu"], False),
    "cuda": (["cuda", "cpu"], False),
    "tensorrt": (["tensorrt", "cuda", "cpu"], False),
    "tensorrt-fp16": (["tensorrt", "cuda", "cpu"], True),
}
"""Configuration name -> (providers in order, FP16)."""
RUNTIME_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def frame_size(text: str) -> tuple[int, int]:
    """``480x270`` -> (480, 270); argparse error otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a frame size; write WIDTHxHEIGHT, e.g. 1920x1080"
        ) from None
    if not (32 <= width <= 8192 and 32 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be 32-8192 pixels")
    return width, height


def batch_size(text: str) -> int:
    """A batch size 1-256; argparse error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size; expected an integer 1-256") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"batch size {value} is out of range 1-256")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--install", action="store_true", help="pip install -e .[gpu] before checking")
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS), help="configurations to run"
    )
    parser.add_argument("--batches", nargs="+", type=batch_size, default=[1, 8, 32])
    parser.add_argument("--sizes", nargs="+", type=frame_size, default=[(480, 270), (1920, 1080)])
    parser.add_argument("--frames", type=int, default=64, help="frames per size (1-4096)")
    parser.add_argument("--engine-cache", type=Path, default=REPO / ".moodstream" / "trt-cache")
    parser.add_argument("--min-parity", type=float, default=0.99, help="parity bar, 0-1")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 unless CUDA and TensorRT ran")
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one configuration
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.frames <= 4096:
        parser.error(f"--frames {args.frames} is out of range 1-4096")
    if not 0 <= args.min_parity <= 1:
        parser.error(f"--min-parity {args.min_parity} is out of range 0-1")
    if "cpu" not in args.configs:
        args.configs = ["cpu", *args.configs]  # the reference of every parity figure
    return args


# ---------------------------------------------------------------------------------------------- worker


def test_frames(size: tuple[int, int], count: int) -> list[Any]:
    """``count`` BGR frames of ``size``: the shared videos resized when present, else the synthetic store."""
    import cv2

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    source = (
        SHARED / "video" / ("facenet-pytorch-video.mp4" if size[0] > 640 else "face-demographics-walking.gif")
    )
    frames = []
    if source.is_file():
        capture = cv2.VideoCapture(str(source))
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = capture.read()
                if not ok:
                    break
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        capture.release()
    if not frames:
        from synthetic_store import store_clip

        frames = [frame for _, frame in store_clip(count / 2 + 1, 2.0, size, 0.9, seed=3)][:count]
    return frames


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in this process: providers used, faces and probabilities, speed per batch."""
    providers, fp16 = CONFIGS[args.worker]
    os.environ["ORT_TENSORRT_ENGINE_CACHE_ENABLE"] = "1"
    os.environ["ORT_TENSORRT_CACHE_PATH"] = str(args.engine_cache)
    os.environ["ORT_TENSORRT_FP16_ENABLE"] = "1" if fp16 else "0"
    args.engine_cache.mkdir(parents=True, exist_ok=True)
    import numpy as np

    from moodstream.classifier import ClassifierConfig, EmotionClassifier
    from moodstream.detector import DetectorConfig, FaceDetector, align_face

    gpu = providers[0] != "cpu"
    detector = FaceDetector(
        DetectorConfig(
            providers=providers,
            crop_batch=256 if gpu else 16,
            pnet_tile_pixels=4_000_000 if gpu else 40_000,
        )
    )
    classifier = EmotionClassifier(ClassifierConfig(providers=providers, batch_size=256))
    used = {
        "detector": list(detector._sessions.pnet.get_providers()) if detector._sessions else [],
        "classifier": classifier.providers,
    }
    result: dict[str, Any] = {"config": args.worker, "providers_used": used, "sizes": {}}
    for width, height in args.sizes:
        frames = test_frames((width, height), args.frames)
        faces = detector.detect(frames)
        crops = np.stack(
            [
                align_face(f, face, size=classifier.input_size, color=classifier.color)
                for f, fs in zip(frames, faces, strict=True)
                for face in fs
            ]
            or [
                np.zeros(
                    (*classifier.input_size[::-1], *(() if classifier.color == "gray" else (3,))), np.uint8
                )
            ]
        )
        probs = classifier.predict(crops)
        speed = {}
        for batch in args.batches:
            chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
            detector.detect(chunks[0])  # warm-up (engine build or load)
            start = time.perf_counter()
            found = sum(len(x) for chunk in chunks for x in detector.detect(chunk))
            seconds = time.perf_counter() - start
            crop_chunks = [crops[i : i + batch] for i in range(0, len(crops), batch)]
            classifier.predict(crop_chunks[0])
            start = time.perf_counter()
            for chunk in crop_chunks:
                classifier.predict(chunk)
            crop_seconds = time.perf_counter() - start
            speed[str(batch)] = {
                "frames_per_s": round(len(frames) / seconds, 1),
                "faces_per_s": round(found / seconds, 1),
                "crops_per_s": round(len(crops) / crop_seconds, 1),
            }
        result["sizes"][f"{width}x{height}"] = {
            "faces": [[[float(v) for v in face.box] for face in fs] for fs in faces],
            "probs": probs.astype(float).tolist(),
            "speed": speed,
        }
    return result


# ---------------------------------------------------------------------------------------------- parent


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def parity(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Per frame size: detector recall/precision against the CPU, mean box error, classifier agreement."""
    out = {}
    for size, ref in reference["sizes"].items():
        got = other["sizes"][size]
        matched = errors = 0.0
        ref_total = sum(len(f) for f in ref["faces"])
        got_total = sum(len(f) for f in got["faces"])
        for ref_faces, got_faces in zip(ref["faces"], got["faces"], strict=True):
            for box in ref_faces:
                best = max(got_faces, key=lambda g: iou(box, g), default=None)
                if best is not None and iou(box, best) >= 0.5:
                    matched += 1
                    errors += sum(abs(a - b) for a, b in zip(box, best, strict=True)) / 4
        agree = diff = 0.0
        if len(ref["probs"]) == len(got["probs"]) and ref["probs"]:
            pairs = list(zip(ref["probs"], got["probs"], strict=True))
            agree = sum(
                max(range(7), key=r.__getitem__) == max(range(7), key=g.__getitem__) for r, g in pairs
            )
            agree /= len(pairs)
            diff = max(abs(a - b) for r, g in pairs for a, b in zip(r, g, strict=True))
        out[size] = {
            "recall": round(matched / ref_total, 4) if ref_total else 1.0,
            "precision": round(matched / got_total, 4) if got_total else 1.0,
            "box_error_px": round(errors / matched, 2) if matched else None,
            "label_agreement": round(agree, 4) if ref["probs"] else None,
            "max_prob_diff": round(diff, 4),
        }
    return out


def installed_providers() -> set[str]:
    import onnxruntime as ort

    return set(ort.get_available_providers())


def run_config(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any] | None:
    """Run one configuration in a child process; None when it failed (its stderr is printed)."""
    out = folder / f"{name}.json"
    argv = [sys.executable, __file__, "--worker", name, "--out", str(out), "--frames", str(args.frames)]
    argv += ["--batches", *map(str, args.batches), "--sizes", *(f"{w}x{h}" for w, h in args.sizes)]
    argv += ["--engine-cache", str(args.engine_cache)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        print(f"{name}: failed (exit {done.returncode}):\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        args.out.write_text(json.dumps(run_worker(args)))
        return 0
    if args.install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-e", f"{REPO}[gpu]"], check=True)
    available = installed_providers()
    print(f"onnxruntime providers installed: {sorted(available)}")
    import tempfile

    results: dict[str, Any] = {"installed": sorted(available), "configs": {}}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name in args.configs:
            first = CONFIGS[name][0][0]
            if RUNTIME_NAMES[first] not in available:
                print(f"{name}: skipped: {RUNTIME_NAMES[first]} is not installed here")
                results["configs"][name] = {"skipped": f"{RUNTIME_NAMES[first]} not installed"}
                if args.require_gpu:
                    problems.append(f"{name}: {RUNTIME_NAMES[first]} not installed")
                continue
            found = run_config(name, args, Path(tmp))
            if found is None:
                problems.append(f"{name}: failed")
                continue
            for model, used in found["providers_used"].items():
                if used and used[0] != RUNTIME_NAMES[first]:
                    print(f"{name}: {model} fell back to {used[0]} (asked for {RUNTIME_NAMES[first]})")
                    if args.require_gpu:
                        problems.append(f"{name}: {model} fell back to {used[0]}")
            results["configs"][name] = found
    reference = results["configs"].get("cpu")
    for name, found in results["configs"].items():
        if "skipped" in found or reference is None:
            continue
        found["parity"] = parity(reference, found) if name != "cpu" else None
        report(name, found, args.min_parity, problems)
    if args.json:
        results_out = {
            k: ({kk: vv for kk, vv in v.items() if kk not in ("sizes",)} | _speed_only(v))
            for k, v in results["configs"].items()
        }
        args.json.write_text(
            json.dumps({"installed": results["installed"], "configs": results_out}, indent=2)
        )
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def _speed_only(found: dict[str, Any]) -> dict[str, Any]:
    if "sizes" not in found:
        return {}
    return {"speed": {size: data["speed"] for size, data in found["sizes"].items()}}


def report(name: str, found: dict[str, Any], bar: float, problems: list[str]) -> None:
    """Print one configuration's speed table and parity; parity below the bar is a problem."""
    used = found["providers_used"]
    print(f"\n{name}: detector on {used['detector'][:1]}, classifier on {used['classifier'][:1]}")
    for size, data in found["sizes"].items():
        for batch, speed in data["speed"].items():
            print(
                f"  {size:>9s} batch {batch:>3s}: {speed['frames_per_s']:8.1f} frames/s "
                f"{speed['faces_per_s']:9.1f} faces/s  classifier {speed['crops_per_s']:9.1f} crops/s"
            )
        check = (found.get("parity") or {}).get(size)
        if check:
            print(f"  {size:>9s} parity with CPU: {json.dumps(check)}")
            low = check["recall"] < bar or check["precision"] < bar
            low = low or (check["label_agreement"] is not None and check["label_agreement"] < bar)
            if low:
                advice = "; keep FP32 for this model" if name.endswith("fp16") else ""
                problems.append(f"{name} {size}: parity below {bar}{advice}")


if __name__ == "__main__":
    raise SystemExit(main())
