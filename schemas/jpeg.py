"""JPEG encoding of sampled frames (what travels in the ``frames`` stream) and decoding back."""

from __future__ import annotations

import cv2
import numpy as np

from moodstream.schemas import defaults


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


MAX_FRAME_PIXELS = defaults.FRAME_PIXELS_CAP
"""Largest frame decoded (width x height; 8K UHD is 33.2 MP). A JPEG of a few hundred bytes can declare
65535 x 65535 pixels: decoding it would allocate gigabytes, so the header is checked first."""

_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by the first start-of-frame header of JPEG bytes; None when the bytes do
    not start like a JPEG or end before a start-of-frame header."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF or marker in _STANDALONE_MARKERS:  # fill byte or a marker without length
            i += 1 if marker == 0xFF else 2
            continue
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            return int.from_bytes(data[i + 7 : i + 9], "big"), height
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def decode_jpeg(data: bytes, max_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray | None:
    """JPEG bytes -> BGR uint8 (H, W, 3), or None when the bytes are not a decodable JPEG or declare an
    empty frame or more than ``max_pixels`` pixels (never decoded: a decompression bomb)."""
    size = jpeg_dimensions(data)
    if size is None or not 0 < size[0] * size[1] <= max_pixels:
        return None
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV refuses some malformed headers with an exception instead of None
        return None
    return image if image is not None and image.size else None
