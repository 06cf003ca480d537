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

from moodstream.ingest.sources import SourceError, open_capture


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
    """Yield (video time ms, BGR frame) of a video file (or a single image) sampled at ``fps``."""
    capture = open_capture(str(path))
    try:
        yield from sample_capture(capture, fps)
    finally:
        capture.release()


def read_image(path: str | Path) -> np.ndarray:
    """A still image as BGR uint8 (H, W, 3); SourceError when it is not a readable image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"not a readable image: {path}")
    return image
