"""Camera sources: what a registry ``source`` string is, and opening it with OpenCV's FFmpeg backend.

Backends are chosen by an explicit registry (``OPENERS``) keyed by the source type: ``file`` (a video
file or image sequence), ``stream`` (rtsp://, rtsp(s)://, http(s)://) and ``webcam`` (a device index).
Open and read timeouts are passed in the VideoCapture parameter list at open time, because OpenCV
ignores them when set on an already opened capture.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import cv2

from moodstream.common.redaction import redact_text, redact_url
from moodstream.schemas.hours import OpeningHours

SourceType = Literal["file", "stream", "webcam"]

_STREAM_SCHEME: Final = re.compile(r"^(rtsps?|rtmp|https?)://", re.IGNORECASE)


class SourceError(RuntimeError):
    """A camera source could not be opened or stopped delivering frames (message has no password)."""


def opencv_message(exc: BaseException) -> str:
    """One line for an OpenCV exception: its own message without the C++ file, line and function
    (``cv2.error`` texts span several lines and name OpenCV's sources)."""
    text = " ".join(str(exc).split())
    _, sep, rest = text.partition(" error: ")
    message = (rest if sep else text).split(" in function ")[0].strip()
    return f"OpenCV could not handle it: {message or type(exc).__name__}"


@dataclass(frozen=True)
class CameraSpec:
    """One camera to ingest: identity, source (file path, URL or webcam index), sampling rate, looping, the
    registry's substituted secrets found in the source (masked wherever the source may be shown), its store's
    opening hours (not part of equality: new hours never restart a camera that stays open), recorded
    footage's start, and motion gating (keywords only: ``motion``: attach the motion regions to each frame;
    ``masks``: normalised polygons the motion check ignores; ``full_frame_ms``: a whole-frame search at
    least this often, 0: none)."""

    store_id: str
    camera_id: str
    source: str
    fps: float
    loop: bool = False
    known_secrets: tuple[str, ...] = field(default=(), repr=False)
    hours: OpeningHours | None = field(default=None, compare=False)
    timezone: str = field(default="UTC", compare=False)
    start_ms: int | None = None
    """Recorded footage: UTC epoch ms of the file's first frame (stores.yaml ``start``); None: not given."""
    _: KW_ONLY
    motion: bool = False
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    full_frame_ms: int = 0

    def is_open(self, at: datetime) -> bool:
        """Whether the camera's store is open at the aware instant ``at`` (always, without hours)."""
        return self.hours is None or self.hours.is_open(at, self.timezone)

    def next_change(self, at: datetime) -> datetime | None:
        """When the store next opens or closes after ``at`` (None: always open, or not within a year)."""
        return None if self.hours is None else self.hours.next_change(at, self.timezone)

    @property
    def label(self) -> str:
        """``store/camera``."""
        return f"{self.store_id}/{self.camera_id}"

    @property
    def kind(self) -> SourceType:
        """``webcam`` for a device index, ``stream`` for a network URL, else ``file``."""
        return source_type(self.source)

    @property
    def redacted_source(self) -> str:
        """The source with URL passwords, secret-looking query values and every known secret as ``***``
        (safe for logs, Redis and ``status``)."""
        return redact_text(self.source, self.secrets)

    @property
    def secrets(self) -> list[str]:
        """The known secrets plus the password of a network source URL (raw, as written), to mask in
        free text."""
        found = list(self.known_secrets)
        if self.kind == "stream":
            try:
                password = urlsplit(self.source).password
            except ValueError:
                password = None
            if password:
                found.append(password)
        return found


def source_type(source: str) -> SourceType:
    """Classify a source string: ``"0"`` -> webcam, ``rtsp://...`` -> stream, anything else -> file."""
    text = source.strip()
    if text.isdigit():
        return "webcam"
    if _STREAM_SCHEME.match(text):
        return "stream"
    return "file"


def _timeouts(open_timeout_ms: int, read_timeout_ms: int) -> list[int]:
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_timeout_ms]


def _open_file(source: str, open_timeout_ms: int, read_timeout_ms: int) -> cv2.VideoCapture:
    if not Path(source).exists():
        raise SourceError(f"video file not found: {source}")
    return cv2.VideoCapture(source, cv2.CAP_FFMPEG, _timeouts(open_timeout_ms, read_timeout_ms))


def _open_stream(source: str, open_timeout_ms: int, read_timeout_ms: int) -> cv2.VideoCapture:
    return cv2.VideoCapture(source, cv2.CAP_FFMPEG, _timeouts(open_timeout_ms, read_timeout_ms))


def _open_webcam(source: str, open_timeout_ms: int, read_timeout_ms: int) -> cv2.VideoCapture:
    return cv2.VideoCapture(int(source), cv2.CAP_ANY, _timeouts(open_timeout_ms, read_timeout_ms))


Opener = Callable[[str, int, int], cv2.VideoCapture]

OPENERS: Final[dict[SourceType, Opener]] = {
    "file": _open_file,
    "stream": _open_stream,
    "webcam": _open_webcam,
}
"""How each source type is opened (source, open timeout ms, read timeout ms) -> capture."""


def open_capture(
    source: str, open_timeout_ms: int = 10_000, read_timeout_ms: int = 10_000
) -> cv2.VideoCapture:
    """Open a source with its timeouts; raise SourceError (password redacted) when it does not open."""
    capture = OPENERS[source_type(source)](source, open_timeout_ms, read_timeout_ms)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open camera source {redact_url(source)}")
    return capture
