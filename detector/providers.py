"""ONNX Runtime execution providers and session creation for the detector networks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from moodstream.common.providers import PROVIDERS, ProviderError
from moodstream.common.providers import resolve_providers as resolve_execution_providers
from moodstream.detector.errors import DetectorError, ModelFileError

__all__ = ["PROVIDERS", "create_session", "resolve_providers"]


def resolve_providers(choice: Literal["auto"] | Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for a config choice (see `moodstream.common.providers.resolve_providers`);
    `DetectorError` when the choice names unknown providers or none that is installed."""
    try:
        return resolve_execution_providers(choice)
    except ProviderError as exc:
        raise DetectorError(str(exc)) from None


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
