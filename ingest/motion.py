"""Motion gating at ingest: which regions of a camera's frame can hold a new, moved or present face.

``MotionGate`` (one per camera reader, frames in capture order) keeps a low-resolution background of the
camera's view: a running average of gray frames ``MotionConfig.analysis_width`` pixels wide, which learns
slowly where something differs from it (a person standing still stays "foreground" for minutes) and fast
elsewhere (light changes). ``regions(frame, captured_ms)`` returns the boxes (frame pixels) where the frame
differs from the background, or did within the last ``hold_ms``, padded and merged: ``None`` when the
whole frame must be searched (the first frame, a gap in time, a periodic full check, or changes over most
of the frame), an empty tuple when there is nothing to look at. Masked areas are ignored.

The gate lives in ingest because ingest is the only place that sees every frame of a camera in order: the
regions ride on the frame's entry, so any number of detector workers (and ``moodstream analyze``) search
exactly the same areas.

Boxes are int arrays (N, 4) of x1, y1, x2, y2 with x2, y2 exclusive.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Box = tuple[int, int, int, int]
Polygon = Sequence[tuple[float, float]]


class MotionConfig(BaseModel):
    """Knobs of the motion check (defaults measured in bench/bench_cameras_per_core.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis_width: int = Field(
        default=320, ge=32, le=4096, description="Width (px) of the gray image frames are compared at."
    )
    threshold: int = Field(
        default=14, ge=1, le=255, description="Gray-level change (0-255, after a 3x3 blur) that is motion."
    )
    min_pixels: int = Field(
        default=2, ge=1, le=10_000, description="Smallest changed area (pixels at analysis_width) kept."
    )
    pad: int = Field(
        default=40, ge=0, le=4096, description="Pixels (detector input) added on every side of a change."
    )
    pad_ratio: float = Field(
        default=0.25,
        ge=0,
        le=4,
        description="Extra padding on every side, as a fraction of the change's size.",
    )
    learning_rate: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="How fast the background follows the view where nothing differs (per frame).",
    )
    foreground_rate: float = Field(
        default=0.0025,
        ge=0,
        le=1,
        description="How fast the background follows areas that differ from it (per frame): small, so a "
        "person standing still keeps being searched (about 1/rate frames).",
    )
    hold_ms: int = Field(
        default=4000,
        ge=0,
        le=600_000,
        description="An area that changed stays searched this long (ms) after its last change, so a head "
        "that turns now and then, or a person present since the camera started who moves a little, keeps "
        "being searched between movements (longer than the tracker's default 3 s gap).",
    )
    max_area_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Regions covering more than this fraction of the frame: the whole frame is searched.",
    )
    max_gap_ms: int = Field(
        default=3000,
        ge=1,
        le=3_600_000,
        description="A frame more than this after the camera's previous one (or earlier than it) is "
        "searched whole: the two are too far apart to compare.",
    )


def full_frame_phase_ms(store_id: str, camera_id: str, full_frame_ms: int) -> int:
    """A camera's stable offset (0 <= phase < full_frame_ms) of its periodic whole-frame searches, from
    its identity: cameras that (re)start together (a deploy, a power cut) do not all search whole frames
    in the same instant, which would queue a burst of whole-frame detections behind each other."""
    if full_frame_ms <= 0:
        return 0
    return zlib.crc32(f"{store_id}/{camera_id}".encode()) % full_frame_ms


def _scaled_polygons(masks: Sequence[Polygon], size: tuple[int, int]) -> list[np.ndarray]:
    width, height = size
    return [np.round(np.asarray(m, np.float64) * [width, height]).astype(np.int32) for m in masks]


class MotionGate:
    """One camera's motion check; frames must come in capture order (see the module docstring)."""

    def __init__(
        self,
        config: MotionConfig | None = None,
        masks: Sequence[Polygon] = (),
        full_frame_ms: int = 0,
        phase_ms: int = 0,
    ) -> None:
        """masks: normalised polygons (stores.yaml) ignored by the check; full_frame_ms: search a whole
        frame at least this often (0: only when the gate cannot compare); phase_ms: the first periodic
        whole-frame search comes this much earlier than ``full_frame_ms`` after a (re)start
        (``full_frame_phase_ms``)."""
        self.config = config or MotionConfig()
        self.masks = tuple(masks)
        self.full_frame_ms = full_frame_ms
        self.phase_ms = phase_ms
        self.background: np.ndarray | None = None
        self.last_change: np.ndarray | None = None  # per small pixel: capture time of its last change
        self.last_ms = 0
        self.last_full_ms = 0

    def reset(self) -> None:
        """Forget the background (a reconnected source): the next frame is searched whole."""
        self.background = None

    def regions(self, frame: np.ndarray, captured_ms: int) -> tuple[Box, ...] | None:
        """Regions of ``frame`` (BGR or gray uint8) to search; None: the whole frame; (): none."""
        cfg = self.config
        small = small_gray(frame, cfg.analysis_width)
        if self.masks:
            cv2.fillPoly(small, _scaled_polygons(self.masks, (small.shape[1], small.shape[0])), 0)
        current = small.astype(np.float32)
        previous, last_ms = self.background, self.last_ms
        self.last_ms = captured_ms
        if (
            previous is None
            or previous.shape != current.shape
            or not 0 <= captured_ms - last_ms <= cfg.max_gap_ms
        ):
            self.background = current
            self.last_change = np.full(current.shape, np.iinfo(np.int64).min // 2, np.int64)
            self.last_full_ms = captured_ms - self.phase_ms
            return None
        foreground = cv2.absdiff(current, previous) > cfg.threshold
        assert self.last_change is not None
        self.last_change[foreground] = captured_ms
        active = (captured_ms - self.last_change) <= cfg.hold_ms
        rate = np.where(foreground, np.float32(cfg.foreground_rate), np.float32(cfg.learning_rate))
        self.background = previous + rate * (current - previous)
        if self.full_frame_ms and captured_ms - self.last_full_ms >= self.full_frame_ms:
            self.last_full_ms = captured_ms
            return None
        boxes = self._boxes(active.astype(np.uint8), small.shape, frame.shape)
        size = (frame.shape[1], frame.shape[0])
        if area_fraction(boxes, size) > cfg.max_area_fraction:
            self.last_full_ms = captured_ms
            return None
        return tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in boxes)

    def _boxes(
        self, foreground: np.ndarray, small_shape: tuple[int, ...], frame_shape: tuple[int, ...]
    ) -> np.ndarray:
        """Foreground areas as padded, merged boxes in frame pixels."""
        cfg = self.config
        found = foreground_boxes(foreground, cfg.min_pixels)
        if len(found) == 0:
            return found
        factor_x = frame_shape[1] / small_shape[1]
        factor_y = frame_shape[0] / small_shape[0]
        scaled = np.round(found * np.array([factor_x, factor_y, factor_x, factor_y])).astype(np.int64)
        grown = grow(scaled, cfg.pad, cfg.pad_ratio, (frame_shape[1], frame_shape[0]))
        return merge_boxes(grown)


def small_gray(frame: np.ndarray, width: int) -> np.ndarray:
    """BGR (H, W, 3) or gray (H, W) uint8 -> gray uint8 about ``width`` px wide (not wider than the frame),
    blurred 3x3."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    height, full_width = gray.shape
    if full_width > width:
        gray = cv2.resize(
            gray, (width, max(1, round(height * width / full_width))), interpolation=cv2.INTER_AREA
        )
    return cv2.GaussianBlur(gray, (3, 3), 0)


def foreground_boxes(changed: np.ndarray, min_pixels: int) -> np.ndarray:
    """Bounding boxes (N, 4) of the connected areas of a 0/1 uint8 image; areas of fewer than
    ``min_pixels`` pixels are noise and left out."""
    if not changed.any():
        return np.zeros((0, 4), np.int64)
    changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    boxes = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= min_pixels + 8:  # the dilation adds a ring of 8 pixels around a single changed pixel
            boxes.append((x, y, x + w, y + h))
    return np.array(boxes, np.int64).reshape(-1, 4)


def grow(boxes: np.ndarray, pad: float, ratio: float, size: tuple[int, int]) -> np.ndarray:
    """Boxes (N, 4) grown by ``pad`` px plus ``ratio`` of their own width/height on every side, clipped to
    a frame of ``size`` (width, height)."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.int64)
    boxes = np.asarray(boxes, np.float64)
    extra_x = pad + ratio * (boxes[:, 2] - boxes[:, 0])
    extra_y = pad + ratio * (boxes[:, 3] - boxes[:, 1])
    out = np.stack(
        [boxes[:, 0] - extra_x, boxes[:, 1] - extra_y, boxes[:, 2] + extra_x, boxes[:, 3] + extra_y], axis=1
    )
    width, height = size
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return np.round(out).astype(np.int64)


def merge_boxes(boxes: np.ndarray) -> np.ndarray:
    """Overlapping (or touching) boxes replaced by their union, repeatedly, until no two overlap."""
    merged = [
        (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
        for box in boxes
        if box[2] > box[0] and box[3] > box[1]
    ]
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int, int, int]] = []
        for box in merged:
            for index, other in enumerate(out):
                if box[0] <= other[2] and other[0] <= box[2] and box[1] <= other[3] and other[1] <= box[3]:
                    out[index] = (
                        min(box[0], other[0]),
                        min(box[1], other[1]),
                        max(box[2], other[2]),
                        max(box[3], other[3]),
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return np.array(merged, np.int64).reshape(-1, 4)


def area_fraction(boxes: np.ndarray, size: tuple[int, int]) -> float:
    """Summed area of non-overlapping boxes over the frame's area."""
    if len(boxes) == 0:
        return 0.0
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return float(areas.sum()) / float(size[0] * size[1])
