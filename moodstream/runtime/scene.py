"""A camera's scene settings applied to its frames: masks blanked before detection, zones for visits.

``CameraScene`` holds what ``stores.yaml`` says about one camera's view (masks, zones, detection
settings); ``blank_masks`` paints the masked areas black, so the detector never sees (and nothing ever
counts) a face there. The detector stage, the tracker stage and ``moodstream analyze`` all use these, so the
pipeline and the offline analyser treat a camera's view the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from moodstream.ingest import full_frame_phase_ms
from moodstream.runtime.frame_analysis import FaceDetectorLike
from moodstream.schemas.regions import Point, Zone, polygon_pixels
from moodstream.schemas.registry import Camera, DetectionConfig

if TYPE_CHECKING:
    from moodstream.detector import Face

Mask = tuple[Point, ...]


@dataclass(frozen=True)
class CameraScene:
    """One camera's masks (normalised polygons), zones and detection settings."""

    masks: tuple[Mask, ...] = ()
    zones: tuple[Zone, ...] = ()
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    full_frame_phase_ms: int = 0
    """Offset of the camera's periodic whole-frame searches (ingest's ``full_frame_phase_ms``)."""

    @classmethod
    def of(cls, camera: Camera | None, store_id: str = "") -> CameraScene:
        """The scene of a registry camera of store ``store_id`` (defaults for None: no mask, no zone)."""
        if camera is None:
            return cls()
        masks = tuple(tuple((float(x), float(y)) for x, y in m) for m in camera.masks)
        full_ms = round(camera.detection.full_frame_seconds * 1000)
        phase = full_frame_phase_ms(store_id, camera.id, full_ms)
        return cls(masks, tuple(camera.zones), camera.detection, phase)


def blank_masks(frame: np.ndarray, masks: Sequence[Mask]) -> np.ndarray:
    """The BGR (or gray) uint8 frame with every masked polygon painted black: a copy when there are masks,
    the frame itself otherwise."""
    if not masks:
        return frame
    height, width = frame.shape[:2]
    out = frame.copy()
    cv2.fillPoly(out, [polygon_pixels(m, (width, height)) for m in masks], (0, 0, 0))
    return out


Box = tuple[int, int, int, int]
MIN_CROP_SIDE = 12
"""A region thinner than this (detector input pixels) cannot hold a face MTCNN finds (P-Net's window)."""


@dataclass
class SearchStats:
    """What the detector searched: frames whole, frames by regions, frames skipped (no detector run), and
    detector-input pixels searched against the pixels of the frames (after resolution by need)."""

    frames: int = 0
    whole: int = 0
    gated: int = 0
    skipped: int = 0
    searched_pixels: int = 0
    frame_pixels: int = 0


def detector_scale(camera_min_face: int, detector_min_face: int) -> float:
    """Resolution by need: how much a camera's frames can shrink before detection so that its smallest
    face (``camera_min_face`` px) becomes the detector's smallest (``detector_min_face`` px); never
    enlarged (1.0 when the camera wants faces as small as, or smaller than, the detector finds)."""
    return min(1.0, detector_min_face / camera_min_face)


def _scaled(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _windows(size: tuple[int, int], regions: Sequence[Box], scale: float) -> list[Box]:
    """The windows (left, top, right, bottom) of a frame shrunk by ``scale`` to ``size`` (width, height)
    that the detector searches for regions given in frame pixels (too thin ones are left out)."""
    width, height = size
    out = []
    for x1, y1, x2, y2 in regions:
        left, top = max(0, int(x1 * scale)), max(0, int(y1 * scale))
        right, bottom = min(width, int(np.ceil(x2 * scale))), min(height, int(np.ceil(y2 * scale)))
        if right - left >= MIN_CROP_SIDE and bottom - top >= MIN_CROP_SIDE:
            out.append((left, top, right, bottom))
    return out


def _region_crops(
    work: np.ndarray, regions: Sequence[Box], scale: float
) -> list[tuple[np.ndarray, int, int]]:
    """Crops of the (scaled) frame for regions given in frame pixels, with their offsets."""
    windows = _windows((work.shape[1], work.shape[0]), regions, scale)
    return [(np.ascontiguousarray(work[t:b, le:r]), le, t) for le, t, r, b in windows]


def searched_regions(
    regions: Sequence[Box] | None, scale: float, frame_size: tuple[int, int]
) -> tuple[Box, ...] | None:
    """What ``detect_in_regions`` searches of a ``frame_size`` (width, height) frame given its ``regions``
    and ``scale``, in the frame's own pixels (the faces' coordinates): None for the whole frame, else the
    searched windows mapped back to frame pixels (outward, within the frame), empty when nothing is."""
    if regions is None:
        return None
    width, height = frame_size
    size = (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1.0 else frame_size
    return tuple(
        (
            min(width - 1, int(left / scale)),
            min(height - 1, int(top / scale)),
            min(width, int(np.ceil(right / scale))),
            min(height, int(np.ceil(bottom / scale))),
        )
        for left, top, right, bottom in _windows(size, regions, scale)
    )


def _moved(face: Face, dx: int, dy: int, scale: float) -> Face:
    """A face found in a crop at offset (dx, dy) of a frame shrunk by ``scale``, in the frame's pixels."""
    x1, y1, x2, y2 = face.box
    box = ((x1 + dx) / scale, (y1 + dy) / scale, (x2 + dx) / scale, (y2 + dy) / scale)
    offset = np.array([dx, dy], dtype=np.float32)
    landmarks = ((np.asarray(face.landmarks, np.float32) + offset) / np.float32(scale)).astype(np.float32)
    return replace(face, box=box, landmarks=landmarks)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def distinct_faces(faces: list[Face]) -> list[Face]:
    """Faces highest score first, a face found twice (at the border of two regions) once."""
    out: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(box_iou(face.box, kept.box) <= 0.5 for kept in out):
            out.append(face)
    return out


def detect_in_regions(
    detector: FaceDetectorLike,
    frames: Sequence[np.ndarray],
    regions: Sequence[Sequence[Box] | None],
    scales: Sequence[float],
    stats: SearchStats | None = None,
) -> list[list[Face]]:
    """Faces of each frame, searched where its ``regions`` say (None: the whole frame; empty: nowhere, no
    detector run) after shrinking it by its ``scale`` (resolution by need); all crops and frames of the
    call in ONE detector call. Boxes and landmarks are in the frames' own pixels, highest score first."""
    stats = stats if stats is not None else SearchStats()
    jobs: list[tuple[int, np.ndarray, int, int]] = []
    for index, (frame, wanted, scale) in enumerate(zip(frames, regions, scales, strict=True)):
        work = _scaled(frame, scale)
        stats.frames += 1
        stats.frame_pixels += work.shape[0] * work.shape[1]
        if wanted is None:
            stats.whole += 1
            jobs.append((index, work, 0, 0))
            continue
        crops = _region_crops(work, wanted, scale)
        stats.gated += 1 if crops else 0
        stats.skipped += 0 if crops else 1
        jobs.extend((index, crop, dx, dy) for crop, dx, dy in crops)
    stats.searched_pixels += sum(image.shape[0] * image.shape[1] for _, image, _, _ in jobs)
    found = detector.detect([image for _, image, _, _ in jobs]) if jobs else []
    faces: list[list[Face]] = [[] for _ in frames]
    for (index, _, dx, dy), in_job in zip(jobs, found, strict=True):
        if dx == dy == 0 and scales[index] == 1.0:
            faces[index].extend(in_job)  # a whole frame at full size: the detector's own result, unchanged
        else:
            faces[index].extend(_moved(face, dx, dy, scales[index]) for face in in_job)
    several = {index for index, count in Counter(j[0] for j in jobs).items() if count > 1}
    return [distinct_faces(f) if i in several else f for i, f in enumerate(faces)]


@dataclass(frozen=True)
class SearchCost:
    """What resolution by need does to one frame: the size searched, the pyramid levels and the P-Net
    input pixels of a whole-frame search, and their share of a search at full size."""

    scale: float
    size: tuple[int, int]
    levels: int
    pnet_pixels: int
    share: float


def _pyramid_pixels(width: int, height: int, min_face: int) -> tuple[int, int]:
    from moodstream.detector import pyramid_scales

    scales = pyramid_scales(height, width, min_face, 0.709)
    return len(scales), sum(round(width * s) * round(height * s) for s in scales)


def search_cost(
    camera_min_face: int, detector_min_face: int, size: tuple[int, int] = (1920, 1080)
) -> SearchCost:
    """The cost of searching a whole ``size`` (width, height) frame of a camera whose smallest face is
    ``camera_min_face`` px, against a full-size search for ``detector_min_face`` px faces (the
    detector's default): P-Net input pixels, which dominate MTCNN's work on large frames."""
    scale = detector_scale(camera_min_face, detector_min_face)
    width, height = max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
    levels, pixels = _pyramid_pixels(width, height, detector_min_face)
    _, full = _pyramid_pixels(size[0], size[1], detector_min_face)
    return SearchCost(scale, (width, height), levels, pixels, pixels / full if full else 1.0)
