"""The tracker stage: ``faces`` -> ``tracks``, exactly one TracksMessage per input frame.

Detector workers finish frames out of order; per camera a ``ReorderWindow`` keyed by the frame's identity
(epoch, seq) restores capture order, and released frames go through the camera's ``CameraVisits`` (tracker,
quality gate, best votes). Held frames stay un-acknowledged (pending in Redis) until they are emitted, so a
crash loses nothing that was accepted. The camera's newest tracked frame is kept un-emitted until the next
one is tracked or the camera has been idle for ``idle_flush_seconds`` (then its open visits end), so every
ended visit rides on a real frame entry and inherits that frame's idempotency downstream. Frames that
arrive after the window passed their place are emitted at once as ``late`` (faces counted, not tracked;
counter ``frames_late``). Runs as ONE worker (see ``moodstream.runtime.lease``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.visit_tracking import CameraVisits, TrackedFrame, untracked
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import FacesMessage, Fields, FrameKey, TracksMessage
from moodstream.schemas.regions import Zone
from moodstream.schemas.visit_config import ReorderConfig, VisitConfig
from moodstream.visits import Released, ReorderWindow, VisitsError

log = logging.getLogger(__name__)

RECENT_FRAMES = 4096
"""Frame identities remembered per camera to recognise redelivered copies (about 14 min at 5 fps)."""

VisitSettings = Callable[[str, str], VisitConfig]
"""(store id, camera id) -> that camera's visit settings."""

ZoneSettings = Callable[[str, str], Sequence[Zone]]
"""(store id, camera id) -> that camera's zones."""


@dataclass
class _Waiting:
    """A frame in the reorder window: its stream entry and message."""

    entry_id: str
    message: FacesMessage


@dataclass
class _Kept:
    """A camera's newest tracked frame, not emitted yet; visits that end later are added to it."""

    entry_id: str
    message: FacesMessage
    frame: TrackedFrame


@dataclass
class _Camera:
    window: ReorderWindow[_Waiting]
    visits: CameraVisits
    last_arrival: float
    kept: _Kept | None = None
    released: _Recent = field(default_factory=lambda: _Recent(RECENT_FRAMES))


class _Recent:
    """The last ``size`` frame identities (epoch, seq) a camera's window released, to tell a redelivered
    frame (a copy of one already tracked) from a late one."""

    def __init__(self, size: int) -> None:
        self.order: deque[tuple[int, int]] = deque(maxlen=size)
        self.members: set[tuple[int, int]] = set()

    def add(self, ident: tuple[int, int]) -> None:
        if len(self.order) == self.order.maxlen:
            self.members.discard(self.order[0])
        self.order.append(ident)
        self.members.add(ident)

    def __contains__(self, ident: object) -> bool:
        return ident in self.members


@dataclass
class _Emitted:
    """What one handle/tick call writes: output entries and the ids they acknowledge."""

    outputs: list[Fields] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)


class TrackerStage:
    """``faces`` -> ``tracks`` for every camera; holds frames while their camera's order is restored."""

    stage = "tracker"

    def __init__(
        self,
        settings: VisitSettings,
        reorder: ReorderConfig | None = None,
        clock: Callable[[], float] = time.time,
        zones: ZoneSettings | None = None,
    ) -> None:
        self.settings = settings
        self.zones = zones
        self.reorder = reorder or ReorderConfig()
        self.clock = clock
        self.cameras: dict[tuple[str, str], _Camera] = {}
        self.holding: set[str] = set()
        """Ids of the entries held now (in a window, or kept as a camera's newest frame)."""

    # ------------------------------------------------------------------ worker interface

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Push each frame into its camera's window; emit what leaves it (held ids stay pending)."""
        now = self.clock()
        out = _Emitted()
        fresh = [e for e in entries if e.entry_id not in self.holding]  # a held one is in its window
        good, dead = decode_all(fresh, FacesMessage.decode, FacesMessage.KIND)
        for entry, message in good:
            key = message.key
            counters.add(key.store_id, key.camera_id, "frames_in")
            camera = self._camera(key, now)
            camera.last_arrival = now
            waiting = _Waiting(entry.entry_id, message)
            self.holding.add(entry.entry_id)
            released = camera.window.push(key.stream_epoch, key.seq, waiting, int(now * 1000))
            self._release(camera, released, out, counters)
        batch_ids = {e.entry_id for e in entries}
        return BatchResult(
            outputs=out.outputs,
            dead=dead,
            held=[e.entry_id for e in entries if e.entry_id in self.holding],
            released=[i for i in out.acked if i not in batch_ids],
        )

    def tick(self, now: float, counters: StageCounters) -> BatchResult:
        """Release frames that waited ``max_wait_seconds``; end the visits of cameras idle for
        ``idle_flush_seconds`` and emit their kept frame."""
        out = _Emitted()
        for camera in self.cameras.values():
            self._release(camera, camera.window.due(int(now * 1000)), out, counters)
            idle = now - camera.last_arrival >= self.reorder.idle_flush_seconds
            if idle and camera.kept is not None and len(camera.window) == 0:
                self._flush(camera, out, counters)
        return BatchResult(outputs=out.outputs, released=out.acked)

    # ------------------------------------------------------------------ per camera

    def _camera(self, key: FrameKey, now: float) -> _Camera:
        ident = (key.store_id, key.camera_id)
        camera = self.cameras.get(ident)
        if camera is None:
            window: ReorderWindow[_Waiting] = ReorderWindow(
                self.reorder.max_frames, round(self.reorder.max_wait_seconds * 1000)
            )
            zones = self.zones(*ident) if self.zones is not None else ()
            camera = _Camera(window, CameraVisits(self.settings(*ident), zones), now)
            self.cameras[ident] = camera
        return camera

    def _release(
        self, camera: _Camera, released: list[Released[_Waiting]], out: _Emitted, counters: StageCounters
    ) -> None:
        for item in released:
            waiting = item.item
            message = waiting.message
            ident = (item.epoch, item.seq)
            if item.duplicate or ident in camera.released:  # a copy (a detector redelivery): once is enough
                self.holding.discard(waiting.entry_id)
                out.acked.append(waiting.entry_id)
                continue
            camera.released.add(ident)
            if item.late or not camera.visits.in_order(message.captured_ms):
                frame = camera.visits.gate_only(message.faces, message.crops)
                counters.add(message.key.store_id, message.key.camera_id, "frames_late")
                self._emit(waiting.entry_id, message, frame, True, out, counters)
                continue
            try:
                frame = camera.visits.observe(
                    message.captured_ms, message.faces, message.crops, message.frame_size, message.searched
                )
            except VisitsError as exc:  # a frame the tracker cannot use: counted, untracked, logged
                log.error("tracker: %s not tracked: %s", message.key.label(), exc)
                counters.add(message.key.store_id, message.key.camera_id, "errors")
                frame = TrackedFrame(
                    untracked(message.faces), (-1,) * len(message.faces), crops=message.crops[:0]
                )
                self._emit(waiting.entry_id, message, frame, True, out, counters)
                continue
            if camera.kept is not None:
                self._emit_kept(camera, out, counters)
            camera.kept = _Kept(waiting.entry_id, message, frame)

    def _flush(self, camera: _Camera, out: _Emitted, counters: StageCounters) -> None:
        """The camera went idle: end its open visits on its kept frame and emit that frame."""
        assert camera.kept is not None
        visits, crops = camera.visits.flush()
        if visits:
            kept = camera.kept.frame
            camera.kept.frame = TrackedFrame(
                kept.faces,
                kept.track_ids,
                (*kept.visits, *visits),
                np.concatenate([kept.crops, crops]) if len(kept.crops) else crops,
            )
        self._emit_kept(camera, out, counters)

    def _emit_kept(self, camera: _Camera, out: _Emitted, counters: StageCounters) -> None:
        assert camera.kept is not None
        kept, camera.kept = camera.kept, None
        self._emit(kept.entry_id, kept.message, kept.frame, False, out, counters)

    def _emit(
        self,
        entry_id: str,
        message: FacesMessage,
        frame: TrackedFrame,
        late: bool,
        out: _Emitted,
        counters: StageCounters,
    ) -> None:
        key = message.key
        tracks = TracksMessage(
            key, message.captured_ms, message.frame_size, frame.faces, late, frame.visits, frame.crops
        )
        out.outputs.append(tracks.encode())
        out.acked.append(entry_id)
        self.holding.discard(entry_id)
        counters.add(key.store_id, key.camera_id, "frames_out")
        counters.add(key.store_id, key.camera_id, "faces", len(frame.faces))
        counters.add(key.store_id, key.camera_id, "visits", len(frame.visits))
