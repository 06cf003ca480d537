"""Choice of ONNX Runtime execution providers for the classifier: "auto" or an explicit list.

The choice itself is shared with the detector (`moodstream.common.providers`); this module only turns
its errors
into `ClassifierError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from moodstream.classifier.errors import ClassifierError
from moodstream.common.providers import ProviderError, resolve_providers


def choose_providers(requested: Literal["auto"] | Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for the configured choice (short names tensorrt/cuda/cpu or full
    ONNX Runtime names; see `moodstream.common.providers.resolve_providers`); `ClassifierError` when it names
    unknown providers, is empty, or nothing requested is installed."""
    try:
        return resolve_providers(requested)
    except ProviderError as exc:
        raise ClassifierError(str(exc)) from None
