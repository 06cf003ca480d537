"""The one emotion label order used by the whole project (FER-2013's order)."""

from collections.abc import Mapping
from typing import Final

EMOTIONS: Final[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER-2013 7-label order: index i of every probability vector is EMOTIONS[i]."""

NEGATIVE_EMOTIONS: Final[tuple[str, ...]] = ("angry", "disgust", "fear", "sad")
"""Emotions that lower the satisfaction index; neutral and surprise count as neither."""


def satisfaction_index(counts: Mapping[str, int], faces: int | None = None) -> float | None:
    """(happy - (angry + disgust + fear + sad)) / faces, in [-1, 1]; None when no face was seen.

    The project's one definition of the index (the SQL views compute the same in PostgreSQL).
    ``counts`` maps emotion name to count; ``faces`` defaults to the sum over all 7 emotions.
    """
    if faces is None:
        faces = sum(int(counts.get(e, 0)) for e in EMOTIONS)
    if faces <= 0:
        return None
    negative = sum(int(counts.get(e, 0)) for e in NEGATIVE_EMOTIONS)
    return (int(counts.get("happy", 0)) - negative) / faces
