"""Aligned face crops -> the model's input tensor, as the manifest's InputSpec describes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moodstream.classifier.errors import ClassifierError
from moodstream.classifier.manifest import InputSpec

ACCEPTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


def _check_crop(index: int, crop: object, spec: InputSpec) -> np.ndarray:
    """Validate one crop; returns it as (H, W, C)."""
    size = f"({spec.width}, {spec.height})"
    want = f"{spec.width}x{spec.height} {spec.color} crops (align_face(size={size}, color={spec.color!r}))"
    if not isinstance(crop, np.ndarray):
        raise ClassifierError(f"crop {index} is a {type(crop).__name__}; expected a numpy array, {want}")
    if crop.dtype not in ACCEPTED_DTYPES:
        raise ClassifierError(f"crop {index} has dtype {crop.dtype}; expected uint8 (or float32 in [0, 255])")
    array = crop[:, :, None] if crop.ndim == 2 else crop
    if array.shape != (spec.height, spec.width, spec.channels):
        raise ClassifierError(f"crop {index} has shape {crop.shape}; this model expects {want}")
    if array.dtype == np.float32:
        if not np.all(np.isfinite(array)):
            raise ClassifierError(f"crop {index} contains NaN or infinite values")
        if array.min() < 0.0 or array.max() > 255.0:
            raise ClassifierError(f"crop {index} has float values outside [0, 255]")
    return array


def crops_to_tensor(crops: Sequence[np.ndarray] | np.ndarray, spec: InputSpec) -> np.ndarray:
    """Validate crops and build the input tensor.

    In: N crops, each uint8 (H, W) / (H, W, 1) for gray or (H, W, 3) in ``spec.color`` channel order.
    Out: float32 (N, C, H, W) or (N, H, W, C) per ``spec.layout``, values (pixel / 255 - mean) / std.
    Raises ClassifierError naming the first bad crop.
    """
    batch = np.stack([_check_crop(i, c, spec) for i, c in enumerate(crops)]).astype(np.float32)
    batch = (batch / np.float32(255.0) - np.float32(spec.mean)) / np.float32(spec.std)
    if spec.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)
