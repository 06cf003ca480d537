"""JPEG encoding of sampled frames (what travels in the ``frames`` stream) and decoding back."""

from __future__ import annotations

import cv2
import numpy as np


class JpegError(ValueError):
    """A frame could not be JPEG-encoded (bad shape or dtype)."""


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """BGR uint8 (H, W, 3) or gray (H, W) frame -> JPEG bytes at ``quality`` (1..100)."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or frame.size == 0:
        raise JpegError(
            f"frame: expected a non-empty uint8 (H, W[, 3]) image, got {frame.dtype} {frame.shape}"
        )
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise JpegError(f"frame of shape {frame.shape}: OpenCV could not encode it as JPEG")
    return buffer.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """JPEG bytes -> BGR uint8 (H, W, 3), or None when the bytes are not a decodable image."""
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None
