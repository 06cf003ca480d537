"""ONNX Runtime execution-provider choice shared by every model stage (detector, classifier).

Config spells providers as ``"auto"`` or an ordered list of short names (``tensorrt``, ``cuda``, ``cpu``)
or ONNX Runtime's own names (``CUDAExecutionProvider``); this module turns that into the list
``onnxruntime.InferenceSession(providers=...)`` takes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field

log = logging.getLogger(__name__)

PROVIDERS: Final[dict[str, str]] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""Short config name -> ONNX Runtime provider name, in the preference order of ``"auto"``."""


class ProviderError(ValueError):
    """An execution-provider choice that names unknown providers or none that is installed."""


def _known_providers(value: Literal["auto"] | list[str]) -> Literal["auto"] | list[str]:
    """Check a configured choice and spell its names short (``CUDAExecutionProvider`` -> ``cuda``)."""
    if value == "auto":
        return value
    if not value:
        raise ValueError("providers must be 'auto' or a non-empty list")
    unknown = [name for name in value if short_provider_name(name) is None]
    if unknown:
        raise ValueError(f"unknown provider(s) {unknown}; expected names from {sorted(PROVIDERS)}")
    return [name for name in (short_provider_name(v) for v in value) if name is not None]


DEFAULT_PROVIDERS: Final = "auto"
"""The execution-provider choice of every model config unless told otherwise."""

ProviderChoice = Annotated[
    Literal["auto"] | list[str],
    AfterValidator(_known_providers),
    Field(
        description="ONNX Runtime execution providers: 'auto' (TensorRT, then CUDA, then CPU, from what is "
        f"installed) or an ordered list of names from {sorted(PROVIDERS)} (ONNX Runtime's own names, "
        "e.g. 'CPUExecutionProvider', are accepted too and stored short)."
    ),
]
"""The one type of a configured execution-provider choice (detector, classifier, pipeline analysis)."""


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
    import onnxruntime as ort  # here, so that configs can use ProviderChoice without loading ONNX Runtime

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
