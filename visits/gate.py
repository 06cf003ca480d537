"""`QualityGate`: decides which detected faces are readable enough to vote for their visit's emotion.

Cheap signals only: the face box's shortest side, the detector score, the head turn from the five
landmarks, and the aligned crop's sharpness. Faces that fail are still tracked and counted (the
visit exists) but carry no emotion. Every face also gets a quality in [0, 1] that ranks a visit's
readable faces, so that only its best few are classified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moodstream.schemas.messages import DetectedFace
from moodstream.visits.config import GateConfig
from moodstream.visits.errors import VisitsError

#: A face this many pixels on its shortest side or more is as good as size gets (the emotion models
#: read 48 px inputs; larger faces add nothing).
FULL_QUALITY_SIDE = 64.0
#: Sharpness (see `sharpness`) from which a crop counts as fully sharp in the quality score.
FULL_QUALITY_SHARPNESS = 0.3
#: Crops with less grey-level spread than this (out of 255) are flat: sharpness 0.
FLAT_CROP_STD = 2.0


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """Verdict on one face: readable or not (with the first failed check), a quality in [0, 1] and the
    measured signals (side in px, yaw ratio, sharpness or None when no crop was given)."""

    readable: bool
    quality: float
    reason: str | None
    side: float
    yaw: float
    sharpness: float | None


def head_yaw(landmarks: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Head-turn ratio from 5 landmarks (left eye, right eye, nose, mouth left, mouth right; (x, y)).

    The nose's offset from the eyes' midpoint along the eye line, over the eye distance: 0 for a
    frontal face, growing as the head turns; infinity when the eyes coincide (a profile).
    """
    return float(head_yaws(np.asarray(landmarks, dtype=np.float64)[None])[0])


def head_yaws(landmarks: np.ndarray) -> np.ndarray:
    """`head_yaw` of many faces: landmarks (N, 5, 2) -> (N,) float64."""
    eye_line = landmarks[:, 1] - landmarks[:, 0]
    distance = np.hypot(eye_line[:, 0], eye_line[:, 1])
    nose = landmarks[:, 2] - (landmarks[:, 0] + landmarks[:, 1]) / 2.0
    along = np.abs(np.einsum("ni,ni->n", nose, eye_line))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(distance < 1e-6, np.inf, along / np.maximum(distance, 1e-12) ** 2)


def sharpness(crop: np.ndarray) -> float:
    """Contrast-free sharpness of a crop (H, W) or (H, W, 3) uint8: std of its 4-neighbour Laplacian over
    the std of its grey levels. Sharp FER-2013 faces score about 0.9, faces in video frames 0.2-0.4,
    heavily blurred ones below 0.12."""
    return float(sharpnesses(np.asarray(crop)[None])[0])


def sharpnesses(crops: np.ndarray) -> np.ndarray:
    """`sharpness` of many crops: (N, H, W) or (N, H, W, 3) uint8 -> (N,) float64."""
    gray = crops.astype(np.float32)
    if gray.ndim == 4:
        gray = gray.mean(axis=3)
    if gray.ndim != 3 or min(gray.shape[1:]) < 3:
        raise VisitsError(f"crop: expected (H, W) or (H, W, 3) with H, W >= 3, got shape {crops.shape[1:]}")
    spread = gray.std(axis=(1, 2))
    centre = gray[:, 1:-1, 1:-1]
    laplacian = 4.0 * centre - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2] - gray[:, 1:-1, 2:]
    ratio = laplacian.std(axis=(1, 2)) / np.maximum(spread, 1e-6)
    return np.where(spread < FLAT_CROP_STD, 0.0, ratio).astype(np.float64)


class QualityGate:
    """Applies a `GateConfig` to faces. Stateless; safe to share."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()

    def assess(self, face: DetectedFace, crop: np.ndarray | None = None) -> FaceQuality:
        """Readable or not, why not, and the face's quality.

        face: the detector's box (frame pixels), score and 5 landmarks; crop: the face's aligned crop
        (H, W) or (H, W, 3) uint8, or None to skip the sharpness check.
        """
        return self.assess_all([face], None if crop is None else np.asarray(crop)[None])[0]

    def assess_all(self, faces: Sequence[DetectedFace], crops: np.ndarray | None) -> tuple[FaceQuality, ...]:
        """`assess` for a frame's faces; crops (N, H, W) or (N, H, W, 3) uint8, one per face, or None."""
        if not faces:
            return ()
        boxes = np.array([f.box for f in faces], dtype=np.float64)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        yaws = head_yaws(np.array([f.landmarks for f in faces], dtype=np.float64))
        sharp = None if crops is None else sharpnesses(crops)
        return tuple(
            self._verdict(
                float(sides[i]), face.score, float(yaws[i]), None if sharp is None else float(sharp[i])
            )
            for i, face in enumerate(faces)
        )

    def _verdict(self, side: float, score: float, yaw: float, sharp: float | None) -> FaceQuality:
        cfg = self.config
        reason = None
        if side < cfg.min_face_size:
            reason = "small"
        elif score < cfg.min_score:
            reason = "low score"
        elif yaw > cfg.max_yaw:
            reason = "turned"
        elif sharp is not None and sharp < cfg.min_sharpness:
            reason = "blurred"
        return FaceQuality(reason is None, _quality(side, score, yaw, sharp), reason, side, yaw, sharp)


def _quality(side: float, score: float, yaw: float, sharp: float | None) -> float:
    """Product of size, score, pose and sharpness terms, each in [0, 1]."""
    size_term = min(1.0, max(0.0, side) / FULL_QUALITY_SIDE)
    score_term = min(1.0, max(0.0, score))
    pose_term = 0.0 if math.isinf(yaw) else max(0.0, 1.0 - yaw)
    sharp_term = 1.0 if sharp is None else min(1.0, sharp / FULL_QUALITY_SHARPNESS)
    return size_term * score_term * pose_term * sharp_term
