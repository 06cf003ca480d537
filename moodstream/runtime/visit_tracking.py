"""The ONE per-camera visit tracking, used by the tracker stage and by ``moodstream analyze``.

``CameraVisits`` wraps a ``moodstream.visits.VisitBuilder`` for one camera: frames go in capture order
(the tracker stage restores that order first), each frame comes out as its gate verdicts (``TrackedFace``)
plus the visits that ended at it as wire records (``VisitRecord``) with their vote crops. Both the pipeline
and ``analyze`` turn faces into visits through this class, so the same frames give the same visits.
Track ids are returned to the caller (``analyze`` draws them) but never put into a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from moodstream.schemas import visit_config as contract
from moodstream.schemas.messages import (
    ClassifiedVote,
    DetectedFace,
    TrackedFace,
    VisitEmotion,
    VisitRecord,
)
from moodstream.schemas.regions import Zone, box_zone
from moodstream.visits import EndedVisit, FaceQuality, VisitBuilder, VisitConfig


def builder_config(config: contract.VisitConfig | VisitConfig | None) -> VisitConfig:
    """The tracking core's settings from the contract's (``stores.yaml``) settings of one camera."""
    if config is None:
        config = contract.VisitConfig()
    if isinstance(config, VisitConfig):
        return config
    return VisitConfig.model_validate(config.model_dump())


@dataclass(frozen=True)
class TrackedFrame:
    """One frame after tracking: per face its verdict and track id (-1: untracked), and the visits that
    ended at it with their vote crops, uint8 (V, H, W[, 3]) in visit order (V = sum of their votes)."""

    faces: tuple[TrackedFace, ...]
    track_ids: tuple[int, ...]
    visits: tuple[VisitRecord, ...] = ()
    crops: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.uint8), repr=False)


def tracked_faces(faces: Sequence[DetectedFace], verdicts: Sequence[FaceQuality]) -> tuple[TrackedFace, ...]:
    """Faces with the gate's verdict (readable flag, quality in [0, 1]); no id, no landmarks."""
    return tuple(
        TrackedFace(f.box, f.score, bool(v.readable), min(1.0, max(0.0, float(v.quality))))
        for f, v in zip(faces, verdicts, strict=True)
    )


def untracked(faces: Sequence[DetectedFace]) -> tuple[TrackedFace, ...]:
    """Faces of a frame the tracker could not use: counted, none readable."""
    return tuple(TrackedFace(f.box, f.score, False, 0.0) for f in faces)


def visit_records(
    visits: Sequence[EndedVisit], crop_tail: tuple[int, ...]
) -> tuple[tuple[VisitRecord, ...], np.ndarray]:
    """Ended visits as wire records, and their vote crops concatenated in visit order.

    ``crop_tail``: (H, W) or (H, W, 3) of the crops, used for the empty array when no visit has votes.
    """
    records = tuple(
        VisitRecord(
            started_ms=v.started_ms,
            ended_ms=v.last_seen_ms,
            faces=v.faces,
            readable_faces=v.readable_faces,
            vote_ms=tuple(vote.captured_ms for vote in v.votes),
            zone=v.zone,
        )
        for v in visits
    )
    crops = [vote.crop for v in visits for vote in v.votes]
    if not crops:
        return records, np.zeros((0, *crop_tail), dtype=np.uint8)
    return records, np.ascontiguousarray(np.stack(crops), dtype=np.uint8)


def visit_emotions(
    visits: Sequence[VisitRecord], probs: np.ndarray
) -> tuple[tuple[ClassifiedVote, ...], tuple[VisitEmotion, ...]]:
    """Visits with their classified votes -> (votes, visits with emotions).

    ``probs``: (V, 7) float probabilities (EMOTIONS order, after the model's calibration), one row per vote
    crop in the order of ``visits``' ``vote_ms``. A visit's probabilities are the mean of its votes' rows;
    a visit without votes is unreadable (``probs`` None).
    """
    expected = sum(len(v.vote_ms) for v in visits)
    if probs.shape[0] != expected:
        raise ValueError(f"probs: expected {expected} rows (one per vote), got shape {probs.shape}")
    votes: list[ClassifiedVote] = []
    out: list[VisitEmotion] = []
    start = 0
    for visit in visits:
        rows = np.asarray(probs[start : start + len(visit.vote_ms)], dtype=np.float64)
        start += len(visit.vote_ms)
        votes.extend(ClassifiedVote(ms, _probs(row)) for ms, row in zip(visit.vote_ms, rows, strict=True))
        mean = _probs(rows.mean(axis=0)) if len(rows) else None
        out.append(
            VisitEmotion(
                visit.started_ms, visit.ended_ms, visit.faces, visit.readable_faces, mean, visit.zone
            )
        )
    return tuple(votes), tuple(out)


def _probs(row: np.ndarray) -> tuple[float, ...]:
    return tuple(float(p) for p in np.clip(row, 0.0, 1.0))


class CameraVisits:
    """One camera's faces -> visits. Frames must come in capture order (non-decreasing ``captured_ms``).

    ``zones``: the camera's zones (stores.yaml); each face counts in the zone holding its box centre, and an
    ended visit carries the zone of most of its faces.
    """

    def __init__(
        self, config: contract.VisitConfig | VisitConfig | None = None, zones: Sequence[Zone] = ()
    ) -> None:
        self.builder = VisitBuilder(builder_config(config))
        self.zones = tuple(zones)
        self.last_ms: int | None = None
        self.crop_tail: tuple[int, ...] = (1, 1)

    def in_order(self, captured_ms: int) -> bool:
        """Whether a frame captured at ``captured_ms`` may still be tracked (not older than the last one)."""
        return self.last_ms is None or captured_ms >= self.last_ms

    def observe(
        self,
        captured_ms: int,
        faces: Sequence[DetectedFace],
        crops: np.ndarray,
        frame_size: tuple[int, int] | None = None,
        searched: Sequence[tuple[int, int, int, int]] | None = None,
    ) -> TrackedFrame:
        """Track one frame: faces with their aligned crops (N, H, W[, 3]) uint8, one per face;
        ``frame_size`` (width, height) places the faces in the camera's zones (needed when it has some);
        ``searched``: the regions (frame pixels) the detector searched, None for the whole frame (a
        track outside all of them was not looked for: it is not aged)."""
        self.crop_tail = tuple(crops.shape[1:])
        zones = None
        if self.zones and frame_size is not None:
            zones = [box_zone(f.box, frame_size, self.zones) for f in faces]
        regions = None if searched is None else np.array(searched, dtype=np.float64).reshape(-1, 4)
        result = self.builder.observe(captured_ms, faces, crops, zones=zones, searched=regions)
        self.last_ms = captured_ms
        records, vote_crops = visit_records(result.ended, self.crop_tail)
        return TrackedFrame(tracked_faces(faces, result.qualities), result.track_ids, records, vote_crops)

    def gate_only(self, faces: Sequence[DetectedFace], crops: np.ndarray) -> TrackedFrame:
        """A frame that cannot be tracked any more (late): the gate's verdicts only, no track, no visit."""
        verdicts = [self.builder.gate.assess(f, crops[i]) for i, f in enumerate(faces)]
        return TrackedFrame(
            tracked_faces(faces, verdicts),
            (-1,) * len(faces),
            crops=np.zeros((0, *crops.shape[1:]), dtype=np.uint8),
        )

    def flush(self) -> tuple[tuple[VisitRecord, ...], np.ndarray]:
        """End every open visit (camera idle, end of a clip): their records and vote crops."""
        return visit_records(self.builder.flush(), self.crop_tail)

    @property
    def open_visits(self) -> int:
        """Tracks followed now."""
        return self.builder.open_visits
