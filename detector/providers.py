"""ONNX Runtime execution providers and session creation for the detector networks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from detector.errors import DetectorError, ModelFileError

log = logging.getLogger(__name__)

#: Config name -> ONNX Runtime provider name. The order is the preference order of ``"auto"``.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def resolve_providers(choice: Literal["auto"] | Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for a config choice, keeping only the installed ones.

    ``"auto"`` gives every installed provider of `PROVIDERS` in preference order (CPU always last);
    an explicit list keeps its order. Raises `DetectorError` when none of the requested is installed.
    """
    available = set(ort.get_available_providers())
    wanted = list(PROVIDERS) if choice == "auto" else list(choice)
    unknown = [name for name in wanted if name not in PROVIDERS]
    if unknown:
        raise DetectorError(
            f"unknown execution provider(s) {unknown}; expected names from {sorted(PROVIDERS)}"
        )
    chosen = [PROVIDERS[name] for name in wanted if PROVIDERS[name] in available]
    missing = [name for name in wanted if PROVIDERS[name] not in available]
    if missing and choice != "auto":
        log.warning("execution provider(s) %s not installed; using %s", missing, chosen)
    if not chosen:
        raise DetectorError(
            f"none of the execution providers {wanted} is installed; onnxruntime offers {sorted(available)}"
        )
    return chosen


def create_session(path: Path, providers: Sequence[str], intra_op_threads: int) -> ort.InferenceSession:
    """An inference session for the ONNX file ``path``; `ModelFileError` naming the file if it cannot load."""
    if not path.is_file():
        raise ModelFileError(path, "not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: the detector interleaves short network runs with numpy
    # work on the calling thread, and spinning workers would take the cores that work needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises several unrelated types for unreadable files
        raise ModelFileError(path, f"cannot be loaded by onnxruntime ({type(exc).__name__})") from exc
