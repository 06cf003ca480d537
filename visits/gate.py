"""`QualityGate`: decides which detected faces are readable enough to vote for their visit's emotion.

Cheap signals only: the face box's shortest side, the detector score, the head turn from the five
landmarks, and the aligned crop's sharpness. Faces that fail are still tracked and counted (the
visit exists) but carry no emotion. Every face also gets a quality in [0, 1] that ranks a visit's
readable faces, so that only its best few are classified.
"""

from __future__ import annotations

import math
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


def head_yaw(landmarks: tuple[tuple[float, float], ...] | np.ndarray) -> float:
    """Head-turn ratio from 5 landmarks (left eye, right eye, nose, mouth left, mouth right; (x, y)).

    The nose's offset from the eyes' midpoint along the eye line, over the eye distance: 0 for a
    frontal face, growing as the head turns; infinity when the eyes coincide (a profile).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    eye_line = points[1] - points[0]
    distance = float(math.hypot(eye_line[0], eye_line[1]))
    if distance < 1e-6:
        return math.inf
    along = float(np.dot(points[2] - (points[0] + points[1]) / 2.0, eye_line / distance))
    return abs(along) / distance


def sharpness(crop: np.ndarray) -> float:
    """Contrast-free sharpness of a crop (H, W) or (H, W, 3) uint8: std of its 4-neighbour Laplacian over
    the std of its grey levels. Sharp 48 px faces score about 0.3-0.8; blurred or upscaled ones less."""
    gray = crop.astype(np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    if gray.ndim != 2 or min(gray.shape) < 3:
        raise VisitsError(f"crop: expected (H, W) or (H, W, 3) with H, W >= 3, got shape {crop.shape}")
    spread = float(gray.std())
    if spread < FLAT_CROP_STD:
        return 0.0
    centre = gray[1:-1, 1:-1]
    laplacian = 4.0 * centre - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(laplacian.std()) / spread


class QualityGate:
    """Applies a `GateConfig` to faces. Stateless; safe to share."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()

    def assess(self, face: DetectedFace, crop: np.ndarray | None = None) -> FaceQuality:
        """Readable or not, why not, and the face's quality.

        face: the detector's box (frame pixels), score and 5 landmarks; crop: the face's aligned crop
        (H, W) or (H, W, 3) uint8, or None to skip the sharpness check.
        """
        cfg = self.config
        x1, y1, x2, y2 = face.box
        side = min(x2 - x1, y2 - y1)
        yaw = head_yaw(face.landmarks)
        sharp = None if crop is None else sharpness(crop)
        reason = None
        if side < cfg.min_face_size:
            reason = "small"
        elif face.score < cfg.min_score:
            reason = "low score"
        elif yaw > cfg.max_yaw:
            reason = "turned"
        elif sharp is not None and sharp < cfg.min_sharpness:
            reason = "blurred"
        return FaceQuality(reason is None, _quality(side, face.score, yaw, sharp), reason, side, yaw, sharp)


def _quality(side: float, score: float, yaw: float, sharp: float | None) -> float:
    """Product of size, score, pose and sharpness terms, each in [0, 1]."""
    size_term = min(1.0, max(0.0, side) / FULL_QUALITY_SIDE)
    score_term = min(1.0, max(0.0, score))
    pose_term = 0.0 if math.isinf(yaw) else max(0.0, 1.0 - yaw)
    sharp_term = 1.0 if sharp is None else min(1.0, sharp / FULL_QUALITY_SHARPNESS)
    return size_term * score_term * pose_term * sharp_term
