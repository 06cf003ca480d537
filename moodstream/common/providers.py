"""ONNX Runtime execution-provider choice shared by every model stage (detector, classifier).

Config spells providers as ``"auto"`` or an ordered list of short names (``tensorrt``, ``cuda``, ``cpu``)
or ONNX Runtime's own names (``CUDAExecutionProvider``); this module turns that into the list
``onnxruntime.InferenceSession(providers=...)`` takes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, Literal

import onnxruntime as ort

log = logging.getLogger(__name__)

PROVIDERS: Final[dict[str, str]] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""Short config name -> ONNX Runtime provider name, in the preference order of ``"auto"``."""


class ProviderError(ValueError):
    """An execution-provider choice that names unknown providers or none that is installed."""


def short_provider_name(name: str) -> str | None:
    """``cuda`` for ``cuda``/``CUDA``/``CUDAExecutionProvider``; None for a name that is not known."""
    by_runtime_name = {runtime.lower(): short for short, runtime in PROVIDERS.items()}
    lowered = name.lower()
    return lowered if lowered in PROVIDERS else by_runtime_name.get(lowered)


def resolve_providers(choice: Literal["auto"] | Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for a config choice, keeping only the installed ones.

    ``"auto"`` gives every installed provider of `PROVIDERS` in preference order (CPU always last); an
    explicit list keeps its order, and its providers that this onnxruntime lacks are skipped with a
    warning. Raises `ProviderError` for an empty list, an unknown name, or when nothing requested is
    installed.
    """
    if choice != "auto" and not choice:
        raise ProviderError("providers list is empty; use 'auto' or name at least one provider")
    wanted = list(PROVIDERS) if choice == "auto" else list(choice)
    short = [short_provider_name(name) for name in wanted]
    unknown = [name for name, s in zip(wanted, short, strict=True) if s is None]
    if unknown:
        raise ProviderError(
            f"unknown execution provider(s) {unknown}: not available; expected names from {sorted(PROVIDERS)}"
        )
    available = set(ort.get_available_providers())
    chosen = [PROVIDERS[s] for s in short if s is not None and PROVIDERS[s] in available]
    missing = [name for name, s in zip(wanted, short, strict=True) if s and PROVIDERS[s] not in available]
    if missing and choice != "auto":
        log.warning("execution provider(s) %s not installed; using %s", missing, chosen)
    if not chosen:
        raise ProviderError(
            f"none of the execution providers {wanted} is installed; onnxruntime offers {sorted(available)}"
        )
    return chosen
