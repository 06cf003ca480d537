"""Choosing which frames of a source are sampled at a camera's fps.

Files: frames are chosen by their own timestamps (``CAP_PROP_POS_MSEC``), one per 1/fps of video
time, so the choice is deterministic and ``moodstream analyze --fps N`` picks exactly the frames that
ingest publishes for the same file. Live sources: every frame is grabbed as it arrives (so no stale
backlog builds up in the capture) and the newest one is decoded when a sample is due.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from moodstream.ingest.sources import SourceError, open_capture, opencv_message
from moodstream.schemas.image_header import ImageSizeError, check_declared_size
from moodstream.schemas.jpeg import MAX_FRAME_PIXELS

MAX_IMAGE_BYTES = 256 * 1024 * 1024
"""Largest image file read by ``read_image`` (a 40-megapixel image is far smaller in any format)."""


class SamplingError(ValueError):
    """A sampling rate that cannot be used."""


def _interval_ms(fps: float) -> float:
    if not 0 < fps <= 1000:
        raise SamplingError(f"fps: expected a number in (0, 1000], got {fps}")
    return 1000.0 / fps


def sample_capture(capture: cv2.VideoCapture, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (video time ms, BGR frame) of the frames due at ``fps``, reading ``capture`` to its end.

    A frame is due when its timestamp reaches the next multiple of 1/fps; a jump in timestamps skips
    the missed slots rather than emitting a burst.
    """
    interval = _interval_ms(fps)
    next_due = 0.0
    index = 0
    native = capture.get(cv2.CAP_PROP_FPS) or 25.0
    while capture.grab():  # every frame is grabbed; only due ones are converted to BGR
        stamp = capture.get(cv2.CAP_PROP_POS_MSEC)
        if index > 0 and stamp <= 0:
            stamp = index * 1000.0 / native
        index += 1
        if stamp + 1e-6 < next_due:
            continue
        ok, frame = capture.retrieve()
        if not ok or frame is None:
            return
        yield stamp, frame
        while next_due <= stamp + 1e-6:
            next_due += interval


def sample_file(path: str | Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (video time ms, BGR frame) of a video file (or a single image) sampled at ``fps``.

    SourceError when the video declares frames of more than MAX_FRAME_PIXELS pixels.
    """
    capture = open_capture(str(path))
    try:
        check_capture_size(capture, str(path))
        yield from sample_capture(capture, fps)
    finally:
        capture.release()


def check_capture_size(capture: cv2.VideoCapture, source: str, max_pixels: int = MAX_FRAME_PIXELS) -> None:
    """SourceError when an opened video declares frames of more than ``max_pixels`` pixels."""
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width * height > max_pixels:
        raise SourceError(
            f"{source}: frames of {width} x {height} pixels, more than the {max_pixels:,} allowed"
        )


def read_image(path: str | Path, max_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray:
    """A still image as BGR uint8 (H, W, 3). Its header is checked before any decoding: SourceError (one
    line) when the file is not a JPEG, PNG, BMP, WebP or TIFF image, declares more than ``max_pixels``
    pixels, is larger than MAX_IMAGE_BYTES, or OpenCV cannot decode it."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_IMAGE_BYTES:
            raise SourceError(f"{path}: larger than {MAX_IMAGE_BYTES // 2**20} MB; not an image to analyse")
        data = file.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        check_declared_size(data, max_pixels)
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except ImageSizeError as exc:
        raise SourceError(f"{path}: {exc}") from None
    except cv2.error as exc:
        raise SourceError(f"{path}: {opencv_message(exc)}") from None
    if image is None or not image.size:
        raise SourceError(f"not a readable image: {path}")
    return image
