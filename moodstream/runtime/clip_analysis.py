"""Visits of one clip, offline: the pipeline's per-frame analysis and per-camera tracking in one process.

``analyze_clip`` takes a clip's sampled frames in order, applies the pipeline's JPEG round trip, detects
faces (``FrameAnalyzer.detect``, batches of ``batch`` frames), tracks them with the same ``CameraVisits``
the tracker stage uses, classifies the votes of each ended visit (``FrameAnalyzer.classify_crops``, as the
classifier stage) and flushes the open visits at the end of the clip, as the tracker does when a camera
goes idle. So the same frames give the same visits as the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from moodstream.ingest import MotionConfig, MotionGate
from moodstream.runtime.face_memory import RecentFaces, detect_remembering
from moodstream.runtime.frame_analysis import FrameAnalyzer, jpeg_round_trip
from moodstream.runtime.scene import (
    CameraScene,
    SearchStats,
    blank_masks,
    detector_scale,
    searched_regions,
)
from moodstream.runtime.visit_tracking import CameraVisits, visit_emotions
from moodstream.schemas.messages import ClassifiedVote, VisitEmotion, VisitRecord
from moodstream.schemas.visit_config import VisitConfig


@dataclass(frozen=True)
class FrameTracks:
    """One analysed frame: its time (ms into the clip) and per face its box, track id (-1: untracked)
    and whether it passed the quality gate."""

    stamp_ms: int
    boxes: tuple[tuple[float, float, float, float], ...]
    track_ids: tuple[int, ...]
    readable: tuple[bool, ...]


@dataclass
class ClipVisits:
    """Everything ``analyze`` reports about a clip: frames, visits with emotions, classified votes."""

    frames: list[FrameTracks] = field(default_factory=list)
    visits: list[VisitEmotion] = field(default_factory=list)
    votes: list[ClassifiedVote] = field(default_factory=list)
    track_visits: dict[int, VisitEmotion] = field(default_factory=dict)
    """Track id -> the visit it became (tracks that never became a visit are absent)."""
    search: SearchStats = field(default_factory=SearchStats)
    """What the detector searched (whole frames, regions, skipped frames, pixels)."""

    @property
    def faces(self) -> int:
        """Faces detected in all frames."""
        return sum(len(f.boxes) for f in self.frames)

    @property
    def readable_faces(self) -> int:
        """Faces that passed the quality gate."""
        return sum(sum(f.readable) for f in self.frames)


class _Spans:
    """Per track id: first and last time seen and observations (to tell which track an ended visit was)."""

    def __init__(self) -> None:
        self.spans: dict[int, tuple[int, int, int]] = {}

    def add(self, stamp_ms: int, track_ids: tuple[int, ...]) -> None:
        for track in track_ids:
            if track >= 0:
                first, _, count = self.spans.get(track, (stamp_ms, stamp_ms, 0))
                self.spans[track] = (first, stamp_ms, count + 1)

    def match(self, visit: VisitEmotion) -> int | None:
        """The track whose span is the visit's (first such; removed)."""
        wanted = (visit.started_ms, visit.ended_ms, visit.faces)
        for track, span in self.spans.items():
            if span == wanted:
                del self.spans[track]
                return track
        return None


def analyze_clip(
    frames: Iterable[tuple[float, np.ndarray]],
    analyzer: FrameAnalyzer,
    config: VisitConfig | None = None,
    jpeg_quality: int = 85,
    batch: int = 8,
    scene: CameraScene | None = None,
    motion: MotionConfig | None = None,
    detector_min_face: int = 20,
) -> ClipVisits:
    """Sampled (time ms, BGR uint8 (H, W, 3)) frames in order -> the clip's visits, votes and per-frame
    tracks (the frames themselves are not kept). ``scene``: the camera's masks (blanked before detection,
    as the detector stage does), zones (each visit's zone, as the tracker stage does) and detection settings:
    the motion gate of ingest (``motion`` knobs) chooses the regions searched, and frames shrink for the
    camera's smallest face (``detector_min_face``: the detector's own smallest face), as in the pipeline.
    Without a scene every frame is searched whole (as for frames published without motion regions);
    ``moodstream analyze`` passes the camera's scene, or the defaults of a stores.yaml camera."""
    gated = scene is not None and scene.detection.motion
    scene = scene or CameraScene()
    tracker = CameraVisits(config, scene.zones)
    spans = _Spans()
    clip = ClipVisits()
    ended: list[tuple[tuple[VisitRecord, ...], np.ndarray]] = []
    chunk: list[tuple[int, np.ndarray]] = []

    gate = None
    if gated:
        full_ms = round(scene.detection.full_frame_seconds * 1000)
        gate = MotionGate(motion, scene.masks, full_ms, scene.full_frame_phase_ms)
    scale = detector_scale(scene.detection.min_face_size, detector_min_face)
    memory = RecentFaces()  # as the detector stage: keep looking where faces were

    def detect_chunk() -> None:
        seen = [blank_masks(jpeg_round_trip(frame, jpeg_quality), scene.masks) for _, frame in chunk]
        regions = [None if gate is None else gate.regions(frame, stamp) for stamp, frame in chunk]
        if analyzer.detector is None:
            raise ValueError("analyze needs an analyzer with a face detector")
        stamps = [stamp for stamp, _ in chunk]
        cameras = [0] * len(seen)  # one camera
        faces, regions = detect_remembering(
            analyzer.detector, seen, regions, [scale] * len(seen), cameras, stamps, memory, clip.search
        )
        aligned = analyzer.align_faces(seen, faces)
        for (stamp_ms, frame), found, wanted in zip(chunk, aligned, regions, strict=True):
            size = (frame.shape[1], frame.shape[0])
            searched = searched_regions(wanted, scale, size)  # as the detector stage tells the tracker
            tracked = tracker.observe(stamp_ms, found.faces, found.crops, size, searched)
            spans.add(stamp_ms, tracked.track_ids)
            boxes = tuple(f.box for f in found.faces)
            readable = tuple(f.readable for f in tracked.faces)
            clip.frames.append(FrameTracks(stamp_ms, boxes, tracked.track_ids, readable))
            ended.append((tracked.visits, tracked.crops))
        chunk.clear()
        _classify(analyzer, ended, clip, spans)

    for stamp, frame in frames:
        chunk.append((round(stamp), frame))
        if len(chunk) >= batch:
            detect_chunk()
    if chunk:
        detect_chunk()
    ended.append(tracker.flush())  # end of the clip: the pipeline's idle flush
    _classify(analyzer, ended, clip, spans)
    return clip


def _classify(
    analyzer: FrameAnalyzer,
    ended: list[tuple[tuple[VisitRecord, ...], np.ndarray]],
    clip: ClipVisits,
    spans: _Spans,
) -> None:
    """Classify the votes of the queued ended visits (one classifier call) and add them to ``clip``."""
    queued = [(records, crops) for records, crops in ended if records]
    ended.clear()
    if not queued:
        return
    probs = analyzer.classify_crops([crops for _, crops in queued])
    for (records, _), rows in zip(queued, probs, strict=True):
        votes, visits = visit_emotions(records, rows)
        clip.votes.extend(votes)
        for visit in visits:
            clip.visits.append(visit)
            track = spans.match(visit)
            if track is not None:
                clip.track_visits[track] = visit
