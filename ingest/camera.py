"""One camera's reader: open the source, sample frames at its fps, JPEG-encode, publish; reconnect on failure.

``CameraReader.run(stop)`` is a thread body. A source that cannot be opened, stalls past its read
timeout or ends unexpectedly is reopened after a capped exponential backoff with jitter; a file
without ``loop`` ends the reader when it is read to its end. Each reader has its own ``stream_epoch``
(start time in ms) and a sequence number that keeps counting across reconnects and loops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.redaction import redact_text
from moodstream.ingest.backoff import BackoffPolicy
from moodstream.ingest.footage import FootagePacer, container_creation_ms
from moodstream.ingest.motion import MotionGate, full_frame_phase_ms
from moodstream.ingest.sampling import sample_capture
from moodstream.ingest.sources import CameraSpec, SourceError, open_capture, opencv_message
from moodstream.schemas import defaults
from moodstream.schemas.jpeg import encode_jpeg
from moodstream.schemas.messages import FrameKey, FrameMessage

log = logging.getLogger(__name__)


class IngestConfig(BaseModel):
    """Tuning of camera readers and the frames publisher."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jpeg_quality: int = Field(
        default=defaults.JPEG_QUALITY,
        ge=10,
        le=100,
        description="JPEG quality of published frames.",
    )
    max_frame_pixels: int = Field(
        default=defaults.MAX_FRAME_PIXELS,
        ge=320 * 240,
        le=defaults.FRAME_PIXELS_CAP,
        description="Frames with more pixels are downscaled (aspect kept) to at most this many before "
        "they are encoded and published.",
    )
    open_timeout_ms: int = Field(default=10_000, ge=100, le=600_000, description="Source open timeout, ms.")
    read_timeout_ms: int = Field(default=10_000, ge=100, le=600_000, description="Source read timeout, ms.")
    backoff: BackoffPolicy = Field(default_factory=BackoffPolicy, description="Reconnect delays.")
    frames_maxlen: int = Field(
        default=defaults.STREAM_MAXLEN,
        ge=10,
        le=10_000_000,
        description="Approximate MAXLEN of the frames stream (frames trimmed unread are counted as shed).",
    )
    reload_interval_s: float = Field(
        default=2.0, gt=0, le=3600, description="Seconds between checks of the registry file for edits."
    )
    lease_ms: int = Field(
        default=10_000,
        ge=1000,
        le=600_000,
        description="Time to live of each camera's lease (one ingest reads a camera): how long a waiting "
        "ingest takes to take a camera over after the one reading it died.",
    )
    realtime: bool = Field(
        default=True,
        description="Pace file sources at their own speed (False: as fast as they decode). Recorded "
        "footage (a file with a start time) is never paced by the clock, only by footage_backlog.",
    )
    footage_backlog: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Recorded footage is read as fast as the detectors take it: a footage camera waits "
        "while more than this many of its frames are unread by the detector group (keep it times the "
        "number of footage cameras well under frames_maxlen, or the stream cap sheds frames).",
    )


@dataclass
class CameraStatus:
    """What a reader is doing, for the live view and ``moodstream status``."""

    state: str = "starting"
    frames: int = 0
    errors: int = 0
    reconnects: int = 0
    last_error: str = ""
    last_frame_ms: int = 0
    epoch: int = 0
    updated: float = field(default_factory=time.time)
    footage_start_ms: int | None = None
    """Recorded footage: capture time of the file's first frame (None: a live source or a file without)."""
    progress: float | None = None
    """Recorded footage: fraction of the file's duration read so far, 0 to 1 (None: not known)."""


Publish = Callable[[FrameMessage], object]
"""Writes one frame message (to the ``frames`` stream) and returns its stream entry id (None: dropped); may
raise on a Redis outage."""


class CameraReader:
    """Reads one camera until stopped (or, for a non-looping file, until its end)."""

    def __init__(
        self, spec: CameraSpec, config: IngestConfig, publish: Publish, pacer: FootagePacer | None = None
    ) -> None:
        self.spec = spec
        self.config = config
        self.publish = publish
        self.pacer = pacer
        self.epoch = int(time.time() * 1000)
        self.seq = 0
        self.status = CameraStatus(epoch=self.epoch)
        self._downscaled = False
        phase = full_frame_phase_ms(spec.store_id, spec.camera_id, spec.full_frame_ms)
        self.gate = MotionGate(None, spec.masks, spec.full_frame_ms, phase) if spec.motion else None

    def run(self, stop: threading.Event) -> None:
        """Thread body: sample, publish, reconnect with backoff; returns when stopped or finished."""
        attempt = 0
        while not stop.is_set():
            frames_before = self.status.frames
            try:
                finished = self._read_once(stop)
                attempt = 0
                if finished:
                    self._set_state("finished")
                    log.info("camera %s: source ended after %d frames", self.spec.label, self.status.frames)
                    return
            except (SourceError, cv2.error, OSError) as exc:
                attempt = 0 if self.status.frames > frames_before else attempt  # frames flowed: start over
                self._failed(exc, attempt, stop)
                attempt += 1
            except Exception as exc:  # a bug or an odd frame must not end the camera for good
                log.exception("camera %s: unexpected error", self.spec.label)
                attempt = 0 if self.status.frames > frames_before else attempt
                self._failed(exc, attempt, stop)
                attempt += 1
        self._set_state("stopped")

    def _failed(self, exc: BaseException, attempt: int, stop: threading.Event) -> None:
        delay = self.config.backoff.delay(attempt)
        text = (str(exc) or type(exc).__name__).replace(self.spec.source, self.spec.redacted_source)
        if isinstance(exc, cv2.error):
            text = opencv_message(exc)
        message = redact_text(text, self.spec.secrets)
        self.status.errors += 1
        self.status.reconnects += 1
        self.status.last_error = message
        self._set_state("reconnecting")
        log.warning("camera %s: %s; reconnecting in %.1fs", self.spec.label, message, delay)
        stop.wait(delay)

    def _read_once(self, stop: threading.Event) -> bool:
        """Open the source and publish its samples; True when a non-looping file ended."""
        self._set_state("connecting")
        capture = open_capture(self.spec.source, self.config.open_timeout_ms, self.config.read_timeout_ms)
        if self.gate is not None:
            self.gate.reset()  # a new connection may show another view: search its first frame whole
        try:
            self._set_state("online")
            if self.spec.kind == "file":
                return self._read_file(capture, stop)
            self._read_live(capture, stop)
            return False
        finally:
            capture.release()

    def _read_file(self, capture: cv2.VideoCapture, stop: threading.Event) -> bool:
        start_ms = self.footage_start()
        if start_ms is not None:
            return self._read_footage(capture, start_ms, stop)
        started = time.monotonic()
        # a file frame's capture time is the start of this pass plus its own time in the file: frame spacing
        # (what the tracker and dwell times use) is the file's, exactly what `moodstream analyze` sees
        pass_start_ms = max(int(time.time() * 1000), self.status.last_frame_ms + 1)
        published = 0
        for stamp_ms, frame in sample_capture(capture, self.spec.fps):
            if self.config.realtime and stop.wait(max(0.0, started + stamp_ms / 1000 - time.monotonic())):
                return False
            if stop.is_set():
                return False
            self._emit(frame, pass_start_ms + round(stamp_ms))
            published += 1
        if published == 0:
            raise SourceError(f"no frame could be read from {self.spec.redacted_source}")
        return not self.spec.loop

    def footage_start(self) -> int | None:
        """The file's recorded start (stores.yaml ``start``, else the container's creation time) as UTC ms;
        None for a looping file or one that records no time."""
        if self.spec.loop:
            return None
        if self.spec.start_ms is not None:
            return self.spec.start_ms
        return container_creation_ms(self.spec.source)

    def _read_footage(self, capture: cv2.VideoCapture, start_ms: int, stop: threading.Event) -> bool:
        """Publish a recorded file at the detectors' pace: capture time = start + position in the file;
        identity (epoch = start, seq = sample index) is the same on every pass and every run."""
        self.epoch, self.seq = start_ms, 0
        self.status.epoch, self.status.footage_start_ms = start_ms, start_ms
        duration_ms = _duration_ms(capture)
        published = 0
        for stamp_ms, frame in sample_capture(capture, self.spec.fps):
            if stop.is_set() or (self.pacer is not None and not self.pacer.wait(stop)):
                return False
            self._emit(frame, start_ms + round(stamp_ms))
            published += 1
            if duration_ms:
                self.status.progress = min(1.0, stamp_ms / duration_ms)
        if published == 0:
            raise SourceError(f"no frame could be read from {self.spec.redacted_source}")
        self.status.progress = 1.0
        return True

    def _read_live(self, capture: cv2.VideoCapture, stop: threading.Event) -> None:
        """Grab every arriving frame; decode and publish the newest each 1/fps."""
        interval = 1.0 / self.spec.fps
        next_due = time.monotonic()
        for _ in _grab_forever(capture, stop, self.spec):
            now = time.monotonic()
            if now >= next_due:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    self._emit(frame)
                next_due = max(next_due + interval, now)

    def _emit(self, frame: np.ndarray, captured_ms: int | None = None) -> None:
        """Publish one frame; ``captured_ms`` defaults to now (live sources)."""
        captured = int(time.time() * 1000) if captured_ms is None else captured_ms
        key = FrameKey(self.spec.store_id, self.spec.camera_id, self.epoch, self.seq)
        frame = self._within_size(frame)  # before the motion check: its regions are in published pixels
        regions = None if self.gate is None else self.gate.regions(frame, captured)
        message = FrameMessage(key, captured, encode_jpeg(frame, self.config.jpeg_quality), regions)
        entry_id = self.publish(message)
        if self.pacer is not None and self.status.footage_start_ms is not None:  # live sources: not paced
            self.pacer.note(entry_id)
        self.seq += 1
        self.status.frames += 1
        self.status.last_frame_ms = captured

    def _within_size(self, frame: np.ndarray) -> np.ndarray:
        """The frame, downscaled (aspect kept, area interpolation) when it has more than
        ``max_frame_pixels`` pixels; the first downscale of a reader is logged."""
        height, width = frame.shape[:2]
        limit = self.config.max_frame_pixels
        if height * width <= limit:
            return frame
        scale = (limit / (height * width)) ** 0.5
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        if not self._downscaled:
            self._downscaled = True
            log.info(
                "camera %s: frames of %d x %d downscaled to %d x %d (pipeline.max_frame_pixels %d)",
                self.spec.label, width, height, *size, limit,
            )  # fmt: skip
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _set_state(self, state: str) -> None:
        self.status.state = state
        self.status.updated = time.time()


def _duration_ms(capture: cv2.VideoCapture) -> float:
    """A file's duration from its frame count and rate (0.0 when the container does not say)."""
    frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(frames / fps * 1000) if frames > 0 and fps > 0 else 0.0


def _grab_forever(capture: cv2.VideoCapture, stop: threading.Event, spec: CameraSpec) -> Iterator[None]:
    while not stop.is_set():
        if not capture.grab():
            raise SourceError(f"stream {spec.redacted_source} stopped delivering frames")
        yield None
