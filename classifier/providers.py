"""Choice of ONNX Runtime execution providers: "auto" or an explicit list.

Kept local because stage packages may not import each other; the detector has the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import onnxruntime as ort

from classifier.errors import ClassifierError

AUTO_ORDER: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
"""Preference order used by "auto": TensorRT, then CUDA, then CPU, as far as onnxruntime offers them."""

SHORT_NAMES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""Short config names (the detector's spelling) -> ONNX Runtime provider names."""


def choose_providers(requested: Literal["auto"] | Sequence[str]) -> list[str]:
    """Resolve the configured providers against what this onnxruntime build offers.

    "auto" -> the available subset of AUTO_ORDER (always ending with CPU). An explicit list (short names
    tensorrt/cuda/cpu or full ONNX Runtime names) is kept in order; a provider that this onnxruntime does
    not offer raises ClassifierError naming it and the available ones.
    """
    available = ort.get_available_providers()
    if requested == "auto":
        return [p for p in AUTO_ORDER if p in available] or ["CPUExecutionProvider"]
    chosen = [SHORT_NAMES.get(p.lower(), p) for p in requested]
    if not chosen:
        raise ClassifierError("providers list is empty; use 'auto' or name at least one provider")
    missing = [p for p in chosen if p not in available]
    if missing:
        raise ClassifierError(
            f"execution provider(s) {missing} not available; this onnxruntime offers {available}"
        )
    return chosen
