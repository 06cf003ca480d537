"""`VisitBuilder`: one camera's frames, in capture order, in; visits (tracks that lived long enough) out.

A visit is one tracked person from the first to the last frame they were seen. It keeps counters and
the best `max_votes` readable face crops (by gate quality) as its emotion votes; nothing else of the
faces is kept, and the votes leave with the ended visit.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from moodstream.schemas.messages import DetectedFace
from moodstream.visits.config import MotionConfig, VisitConfig
from moodstream.visits.errors import VisitsError
from moodstream.visits.gate import FaceQuality, QualityGate
from moodstream.visits.tracker import FaceTracker


@dataclass(frozen=True, slots=True, eq=False)
class Vote:
    """One readable face of a visit: capture time (epoch ms), gate quality, aligned crop (a copy)."""

    captured_ms: int
    quality: float
    crop: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class EndedVisit:
    """A finished visit: first and last capture time seen (epoch ms), observations, readable
    observations, its votes (at most max_votes, highest quality first; empty = unreadable visit) and its
    zone (the zone of most of its observations, the earliest seen on a tie; None: never in a zone)."""

    started_ms: int
    last_seen_ms: int
    faces: int
    readable_faces: int
    votes: tuple[Vote, ...]
    zone: str | None = None

    @property
    def dwell_ms(self) -> int:
        """Time in view: last seen minus started (0 for a visit seen in one instant)."""
        return self.last_seen_ms - self.started_ms


@dataclass(frozen=True, slots=True)
class FrameVisits:
    """What one frame did: per face (in the input order) its track id (-1 untracked), readable flag
    and gate verdict; and the visits that ended at this frame (tracks expired), oldest start first."""

    track_ids: tuple[int, ...]
    readable: tuple[bool, ...]
    qualities: tuple[FaceQuality, ...]
    ended: tuple[EndedVisit, ...]


@dataclass
class _OpenVisit:
    started_ms: int
    last_seen_ms: int
    faces: int = 0
    readable_faces: int = 0
    best: list[tuple[float, int, int, Vote]] = field(default_factory=list)  # min-heap, worst vote first
    zones: dict[str, int] = field(default_factory=dict)  # observations per zone, in order first seen

    def zone(self) -> str | None:
        """The zone of most observations; on a tie the one seen first (dicts keep insertion order)."""
        best: str | None = None
        for name, count in self.zones.items():
            if best is None or count > self.zones[best]:
                best = name
        return best


class VisitBuilder:
    """Tracks one camera's faces and builds its visits. Frames must come in capture order."""

    def __init__(self, config: VisitConfig | None = None, motion: MotionConfig | None = None) -> None:
        """config: the camera's visit settings (stores.yaml); motion: the tracker's motion model."""
        self.config = config or VisitConfig()
        self.tracker = FaceTracker(self.config.tracker, motion)
        self.gate = QualityGate(self.config.gate)
        self._open: dict[int, _OpenVisit] = {}
        self._order = itertools.count()  # tie-break of equal votes: earlier observation wins

    @property
    def open_visits(self) -> int:
        """Tracks currently followed (including those not yet confirmed as visits)."""
        return len(self._open)

    def observe(
        self,
        captured_ms: int,
        faces: Sequence[DetectedFace],
        crops: np.ndarray | None,
        frame_size: tuple[int, int] | None = None,
        zones: Sequence[str | None] | None = None,
        searched: np.ndarray | None = None,
    ) -> FrameVisits:
        """Track and gate one frame's faces.

        captured_ms: capture time (epoch ms), non-decreasing; faces: the detector's faces of the frame;
        crops: (N, H, W) or (N, H, W, 3) uint8 aligned crops, one per face (None: no sharpness check, no
        votes kept); frame_size: (width, height) of the frame, if known (a track predicted outside it
        ends when unmatched, see `FaceTracker.update`); zones: per face the zone holding it (None: no
        zone), counted per visit to give its zone; searched: (K, 4) the regions the detector searched
        (None: the whole frame; a track not searched for is not aged, see `FaceTracker.update`).
        Returns the per-face results and the visits that ended at this frame.
        """
        _check_crops(crops, len(faces))
        if zones is not None and len(zones) != len(faces):
            raise VisitsError(f"zones: expected {len(faces)} entries (one per face), got {len(zones)}")
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in faces], dtype=np.float64)
        ids = self.tracker.update(captured_ms, boxes, scores, frame_size, searched)
        verdicts = self.gate.assess_all(faces, crops)
        for i, track in enumerate(ids.tolist()):
            if track >= 0:
                self._add(track, captured_ms, verdicts[i], None if crops is None else crops[i])
                zone = None if zones is None else zones[i]
                if zone is not None:
                    counts = self._open[track].zones
                    counts[zone] = counts.get(zone, 0) + 1
        ended = self._finish(self.tracker.ended(captured_ms))
        return FrameVisits(tuple(ids.tolist()), tuple(v.readable for v in verdicts), verdicts, ended)

    def flush(self) -> tuple[EndedVisit, ...]:
        """End every open visit (camera idle, end of clip); the builder starts afresh afterwards."""
        return self._finish(self.tracker.flush())

    def _add(self, track: int, captured_ms: int, verdict: FaceQuality, crop: np.ndarray | None) -> None:
        visit = self._open.get(track)
        if visit is None:
            visit = self._open[track] = _OpenVisit(captured_ms, captured_ms)
        visit.last_seen_ms = max(visit.last_seen_ms, captured_ms)  # a clock step back never shrinks dwell
        visit.faces += 1
        if not verdict.readable:
            return
        visit.readable_faces += 1
        if crop is None:
            return
        # Heap key: (quality, -order) so that among equal qualities the latest observation is evicted first.
        order = next(self._order)
        key = (verdict.quality, -order)
        if len(visit.best) < self.config.max_votes:
            heapq.heappush(visit.best, (*key, order, Vote(captured_ms, verdict.quality, crop.copy())))
        elif key > visit.best[0][:2]:
            heapq.heapreplace(visit.best, (*key, order, Vote(captured_ms, verdict.quality, crop.copy())))

    def _finish(self, tracks: list[int]) -> tuple[EndedVisit, ...]:
        """Close these tracks' visits; those with fewer than min_frames observations are dropped."""
        out = []
        for track in tracks:
            visit = self._open.pop(track, None)
            if visit is None or visit.faces < self.config.tracker.min_frames:
                continue
            votes = tuple(vote for *_, vote in sorted(visit.best, reverse=True))
            out.append(
                EndedVisit(
                    visit.started_ms,
                    visit.last_seen_ms,
                    visit.faces,
                    visit.readable_faces,
                    votes,
                    visit.zone(),
                )
            )
        out.sort(key=lambda v: (v.started_ms, v.last_seen_ms))
        return tuple(out)


def _check_crops(crops: np.ndarray | None, count: int) -> None:
    if crops is None:
        return
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim not in (3, 4):
        raise VisitsError(
            f"crops: expected a uint8 array (N, H, W) or (N, H, W, 3), got "
            f"{type(crops).__name__} {getattr(crops, 'dtype', '')} {getattr(crops, 'shape', '')}"
        )
    if len(crops) != count:
        raise VisitsError(f"crops: expected {count} crops (one per face), got {len(crops)}")
