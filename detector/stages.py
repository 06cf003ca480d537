"""The three MTCNN stages over a batch of frames, vectorised with numpy.

The algorithm follows the reference MTCNN of facenet-pytorch (same weights, parameters, box rounding,
area resampling and suppression order) so that both find the same faces:

1. P-Net on an image pyramid (scales 12/min_face * factor**k while the short side stays >= 12 px),
   one 12x12 proposal per output cell at stride 2, NMS 0.5 per scale, NMS 0.7 across scales,
   box regression, squaring.
2. R-Net on 24x24 crops of every proposal, threshold, NMS 0.7, regression, squaring.
3. O-Net on 48x48 crops: threshold, 5 landmarks, regression, NMS 0.7 over the smaller area.

Crops are the part of the box inside the frame, stretched to the network input. All frames of a
call share each R-Net and O-Net run; frames of the same size share each P-Net run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count, pairwise
from typing import Any

import numpy as np

from moodstream.detector.boxes import apply_regression, crop_windows_in_frame, nms, square_boxes
from moodstream.detector.models import MTCNNSessions
from moodstream.detector.resample import crop_windows, integral_images, pyramid_level

PNET_STRIDE = 2
PNET_CELL = 12
RNET_SIZE = 24
ONET_SIZE = 48
#: O-Net runs take crop_batch // ONET_CROP_RATIO crops: each O-Net crop's activations are about 4x an
#: R-Net crop's, and runs whose activations fit in the CPU's L2 cache are the fastest per crop.
ONET_CROP_RATIO = 4


@dataclass(frozen=True)
class WorkMap:
    """Applies a function to each of several items, shared out over ``workers`` threads: the calling
    thread and the helper threads of ``pool`` (``workers - 1`` of them; None: the calling thread alone).
    Each thread takes the next item as soon as it is free, so results come back in item order and a
    busy pool never blocks the caller, which then does the work itself."""

    pool: ThreadPoolExecutor | None = None
    workers: int = 1

    def __call__(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.pool is None or self.workers < 2 or len(items) < 2:
            return [function(item) for item in items]
        results: list[Any] = [None] * len(items)
        claim = count()  # next() on it is atomic: each index is taken by exactly one thread

        def drain() -> None:
            while (index := next(claim)) < len(items):
                results[index] = function(items[index])

        helpers = [self.pool.submit(drain) for _ in range(min(self.workers, len(items)) - 1)]
        try:
            drain()
        finally:
            for helper in helpers:
                helper.result()
        return results

    def chunks(self, total: int, largest: int) -> list[tuple[int, int]]:
        """[start, stop) ranges covering 0 .. total - 1, at most ``largest`` long, as even as possible,
        and (with several workers) a multiple of ``workers`` in number so that each gets the same work."""
        pieces = -(-total // largest)
        if self.pool is not None and self.workers > 1:
            pieces = min(total, -(-pieces // self.workers) * self.workers)
        bounds = np.linspace(0, total, pieces + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in pairwise(bounds.tolist()) if b > a]


SERIAL = WorkMap()


@dataclass
class FrameBatch:
    """Frames of one size: integral images (B, H + 1, W + 1, 3) and the index of the first frame."""

    integral: np.ndarray
    first: int

    @classmethod
    def from_frames(cls, frames: np.ndarray, first: int) -> FrameBatch:
        """(B, H, W, 3) uint8 BGR frames -> batch whose frames are numbered first .. first + B - 1."""
        return cls(integral_images(frames), first)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return self.integral.shape[1] - 1, self.integral.shape[2] - 1

    def holds(self, frame_ids: np.ndarray) -> np.ndarray:
        """(K,) bool: which global frame ids belong to this batch."""
        held: np.ndarray = (frame_ids >= self.first) & (frame_ids < self.first + self.integral.shape[0])
        return held


@dataclass
class Candidates:
    """Face candidates of several frames: boxes (K, 4) float32, scores (K,) float32, frame ids (K,) int64,
    and per-candidate extras (K, ...) such as regression offsets or landmarks."""

    boxes: np.ndarray
    scores: np.ndarray
    frames: np.ndarray
    extra: np.ndarray

    @classmethod
    def empty(cls, extra_width: int = 4) -> Candidates:
        """No candidates."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, extra_width), np.float32),
        )

    @classmethod
    def concat(cls, parts: Sequence[Candidates]) -> Candidates:
        """All candidates of ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("boxes", "scores", "frames", "extra"))
        )

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index`` (int indices or a bool mask)."""
        return Candidates(self.boxes[index], self.scores[index], self.frames[index], self.extra[index])

    def __len__(self) -> int:
        return len(self.boxes)


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Pyramid scales: P-Net's 12 px window sees faces from ``min_face_size`` px up to the short side."""
    scale = 12.0 / min_face_size
    short_side = min(height, width) * scale
    scales = []
    while short_side >= 12:
        scales.append(scale)
        scale *= factor
        short_side *= factor
    return scales


def proposals_at_scale(
    regression: np.ndarray, face_prob: np.ndarray, scale: float, threshold: float, first: int
) -> Candidates:
    """P-Net output cells with face_prob >= threshold as boxes in frame coordinates.

    regression (B, 4, H', W'), face_prob (B, H', W'); cell (y, x) covers the window
    [(2x + 1) / scale, (2x + 12) / scale] (floored; MTCNN's 1-based convention). extra = regression (K, 4).
    """
    frame, row, col = np.nonzero(face_prob >= threshold)
    cells = np.stack([col, row], axis=1).astype(np.float32)
    scale32 = np.float32(scale)
    top_left = np.floor((PNET_STRIDE * cells + 1) / scale32)
    bottom_right = np.floor((PNET_STRIDE * cells + PNET_CELL) / scale32)
    boxes = np.concatenate([top_left, bottom_right], axis=1).astype(np.float32)
    offsets = regression[frame, :, row, col]
    return Candidates(boxes, face_prob[frame, row, col], frame.astype(np.int64) + first, offsets)


def pnet_output_rows(height: int) -> int:
    """Rows of P-Net's output map for an input of ``height`` rows (conv 3, ceil-pool 2, conv 3, conv 3)."""
    return max(0, -(-(height - 2) // 2) - 4)


def run_pnet_tiled(
    sessions: MTCNNSessions, level: np.ndarray, tile_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """P-Net on (B, h, w, 3) in runs of about ``tile_pixels`` input pixels; same result as one run.

    Small levels go several frames per run; large ones in horizontal strips: output rows r0..r1-1
    need exactly input rows 2*r0 .. 2*r1+9 (receptive field 12, stride 2), so strips are exact.
    Small runs keep P-Net's activations in CPU cache, which is faster than one large run.
    """
    count, height, width, _ = level.shape
    pixels = height * width
    frames_per_run = max(1, min(count, tile_pixels // pixels))
    out_rows = pnet_output_rows(height)
    strip = out_rows if pixels <= tile_pixels else max(8, (tile_pixels // width - 10) // 2)
    parts_reg, parts_prob = [], []
    for first in range(0, count, frames_per_run):
        frames = level[first : first + frames_per_run]
        strips = [
            sessions.run_pnet(frames[:, 2 * r0 : 2 * r0 + 2 * strip + 10]) for r0 in range(0, out_rows, strip)
        ]
        parts_reg.append(np.concatenate([r for r, _ in strips], axis=2))
        parts_prob.append(np.concatenate([p for _, p in strips], axis=1))
    return np.concatenate(parts_reg), np.concatenate(parts_prob)


def propose(
    sessions: MTCNNSessions,
    batch: FrameBatch,
    min_face_size: int,
    factor: float,
    threshold: float,
    tile_pixels: int,
    map_scales: WorkMap = SERIAL,
) -> Candidates:
    """Stage 1 on one batch of same-size frames: squared, regressed proposals (extra unused).

    ``map_scales`` runs the pyramid levels (largest first), e.g. on several threads.
    """
    height, width = batch.size

    def at_scale(scale: float) -> Candidates:
        level = pyramid_level(batch.integral, int(height * scale + 1), int(width * scale + 1))
        regression, face_prob = run_pnet_tiled(sessions, level, tile_pixels)
        found = proposals_at_scale(regression, face_prob, scale, threshold, batch.first)
        return found.take(nms(found.boxes, found.scores, found.frames, 0.5))

    found = Candidates.concat(map_scales(at_scale, pyramid_scales(height, width, min_face_size, factor)))
    found = found.take(nms(found.boxes, found.scores, found.frames, 0.7))
    found.boxes = square_boxes(apply_regression(found.boxes, found.extra, inclusive=False))
    return found


@dataclass
class CropPlan:
    """Where each candidate's crop comes from, in candidate order (grouped by batch): the batch
    index (K,) int64, the frame index within that batch (K,) int64 and the pixel window (K, 4) int64."""

    batch: np.ndarray
    frame: np.ndarray
    windows: np.ndarray

    def crops(self, batches: Sequence[FrameBatch], start: int, stop: int, size: int) -> np.ndarray:
        """Crops (stop - start, size, size, 3) float32 of candidates start .. stop - 1."""
        batch_ids = self.batch[start:stop]
        parts = []
        for b in np.unique(batch_ids):
            members = np.flatnonzero(batch_ids == b) + start
            parts.append(crop_windows(batches[b].integral, self.frame[members], self.windows[members], size))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def plan_crops(batches: Sequence[FrameBatch], found: Candidates) -> tuple[Candidates, CropPlan]:
    """The candidates that overlap their frame, and where their crops come from."""
    index_parts, batch_parts, frame_parts, window_parts = [], [], [], []
    for b, batch in enumerate(batches):
        members = np.flatnonzero(batch.holds(found.frames))
        windows, valid = crop_windows_in_frame(found.boxes[members], *batch.size)
        members = members[valid]
        index_parts.append(members)
        batch_parts.append(np.full(len(members), b, np.int64))
        frame_parts.append(found.frames[members] - batch.first)
        window_parts.append(windows)
    if not index_parts:
        empty = np.zeros(0, np.int64)
        return found.take(empty), CropPlan(empty, empty, np.zeros((0, 4), np.int64))
    plan = CropPlan(np.concatenate(batch_parts), np.concatenate(frame_parts), np.concatenate(window_parts))
    return found.take(np.concatenate(index_parts)), plan


def run_on_crops(
    run: Callable[[np.ndarray], tuple[np.ndarray, ...]],
    batches: Sequence[FrameBatch],
    plan: CropPlan,
    size: int,
    chunk: int,
    map_chunks: WorkMap = SERIAL,
) -> list[np.ndarray]:
    """Crop and run a network in chunks of at most ``chunk`` candidates (each chunk crops its own
    candidates, so ``map_chunks`` can spread both over threads); outputs concatenated in order."""

    def crop_and_run(bounds: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return run(plan.crops(batches, *bounds, size))

    outputs = map_chunks(crop_and_run, map_chunks.chunks(len(plan.batch), chunk))
    return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]


def refine(
    sessions: MTCNNSessions,
    batches: Sequence[FrameBatch],
    found: Candidates,
    threshold: float,
    chunk: int,
    map_chunks: WorkMap = SERIAL,
) -> Candidates:
    """Stage 2: R-Net scores and regresses every proposal of every frame; squared boxes (extra unused)."""
    found, plan = plan_crops(batches, found)
    if len(found) == 0:
        return found
    regression, face_prob = run_on_crops(sessions.run_rnet, batches, plan, RNET_SIZE, chunk, map_chunks)
    passed = face_prob > threshold
    found = Candidates(found.boxes[passed], face_prob[passed], found.frames[passed], regression[passed])
    found = found.take(nms(found.boxes, found.scores, found.frames, 0.7))
    found.boxes = square_boxes(apply_regression(found.boxes, found.extra, inclusive=True))
    return found


def finish(
    sessions: MTCNNSessions,
    batches: Sequence[FrameBatch],
    found: Candidates,
    threshold: float,
    chunk: int,
    map_chunks: WorkMap = SERIAL,
) -> Candidates:
    """Stage 3: O-Net scores, regresses and places landmarks; extra = landmarks (K, 5, 2) float32."""
    found, plan = plan_crops(batches, found)
    if len(found) == 0:
        return Candidates(found.boxes, found.scores, found.frames, np.zeros((0, 5, 2), np.float32))
    regression, landmarks, face_prob = run_on_crops(
        sessions.run_onet, batches, plan, ONET_SIZE, chunk, map_chunks
    )
    passed = face_prob > threshold
    boxes = found.boxes[passed]
    size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], axis=1)[:, None, :]
    relative = landmarks[passed].reshape(-1, 2, 5).transpose(0, 2, 1)  # (K, 5, [x, y])
    points = (relative * size + boxes[:, None, :2] - 1).astype(np.float32)
    boxes = apply_regression(boxes, regression[passed], inclusive=True)
    found = Candidates(boxes, face_prob[passed], found.frames[passed], points)
    return found.take(nms(found.boxes, found.scores, found.frames, 0.7, mode="min", inclusive=True))
