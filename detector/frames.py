"""Validation and normalisation of input frames to 3-channel BGR uint8."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from moodstream.detector.errors import DetectorError

EXPECTED = "a uint8 numpy array of shape (H, W, 3) BGR, (H, W, 4) BGRA, (H, W, 1) or (H, W) grayscale"


def to_bgr(frame: Any, where: str = "frame") -> np.ndarray:
    """Return ``frame`` as a C-contiguous (H, W, 3) uint8 BGR array.

    Accepts BGR (H, W, 3), BGRA (H, W, 4), grayscale (H, W) or (H, W, 1), all uint8. Anything else
    raises `DetectorError` naming ``where``, what it got and what was expected.
    """
    if not isinstance(frame, np.ndarray):
        raise DetectorError(f"{where}: got {type(frame).__name__}; expected {EXPECTED}")
    if frame.dtype != np.uint8:
        raise DetectorError(f"{where}: got dtype {frame.dtype}; expected {EXPECTED}")
    if frame.ndim not in (2, 3):
        raise DetectorError(f"{where}: got shape {frame.shape}; expected {EXPECTED}")
    if frame.shape[0] == 0 or frame.shape[1] == 0 or frame.size == 0:
        raise DetectorError(
            f"{where}: got an empty frame of shape {frame.shape}; expected height and width >= 1"
        )
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    if channels == 3:
        return np.ascontiguousarray(frame)
    raise DetectorError(f"{where}: got {channels} channels (shape {frame.shape}); expected {EXPECTED}")
