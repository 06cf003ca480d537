"""Face alignment: a similarity transform from the 5 MTCNN landmarks to a FER-2013-like framing."""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from moodstream.detector.errors import DetectorError
from moodstream.detector.face import Face
from moodstream.detector.frames import to_bgr

ColorMode = Literal["gray", "bgr", "rgb"]
COLOR_MODES = ("gray", "bgr", "rgb")

#: Where the 5 landmarks (left eye, right eye, nose, mouth left, mouth right) sit in a FER-2013 face,
#: as fractions of the crop width and height (margin 0). Calibrated in closed loop (MODELS.md, "Crop
#: framing"): this detector, run on 48x48 images upscaled 4x (bicubic, 64 px border replicated), finds the
#: landmarks of 1,306 FER-2013 faces at eyes (0.322, 0.384) / (0.690, 0.379), nose (0.505, 0.590), mouth
#: (0.352, 0.792) / (0.659, 0.789), and those of the pipeline's aligned crops of the 246 in-the-wild faces
#: at (0.329, 0.391) / (0.673, 0.391), (0.500, 0.590), (0.352, 0.763) / (0.645, 0.767) with the previous
#: template: crops 7 % too small. The template is the previous one moved by that difference, made
#: left-right symmetric.
FER_TEMPLATE = np.array(
    [[0.310, 0.374], [0.690, 0.374], [0.500, 0.589], [0.336, 0.789], [0.664, 0.789]],
    dtype=np.float64,
)
MAX_MARGIN = 2.0
MAX_SUPERSAMPLE = 8


def template_points(size: tuple[int, int], margin: float) -> np.ndarray:
    """The template landmarks in pixels of a (width, height) crop. (5, 2) float64.

    ``margin`` adds that fraction of the face framing on every side (0.25 = the face appears 1.5x
    smaller, same centre). Non-square crops keep the face's proportions: the template is scaled by
    the shorter side and centred.
    """
    width, height = size
    side = min(width, height) / (1.0 + 2.0 * margin)
    points: np.ndarray = (FER_TEMPLATE - 0.5) * side + np.array([width / 2.0, height / 2.0])
    return points


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping src (K, 2) onto dst (K, 2).

    Returns the (2, 3) float64 matrix for `cv2.warpAffine` (Umeyama's method, no reflection).
    """
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c**2).sum() / len(src))
    if not math.isfinite(src_var) or src_var < 1e-6:
        raise DetectorError("face landmarks are degenerate (all at one point); expected 5 distinct points")
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(singular) @ flip)) / src_var
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def _check_arguments(face: Face, size: tuple[int, int], color: str, margin: float) -> np.ndarray:
    """Validated landmarks (5, 2) float64; `DetectorError` for a bad size, colour, margin or landmarks."""
    if len(size) != 2 or not all(isinstance(v, int | np.integer) and 1 <= v <= 4096 for v in size):
        raise DetectorError(f"size: got {size!r}; expected (width, height) integers in 1..4096")
    if color not in COLOR_MODES:
        raise DetectorError(f"color: got {color!r}; expected one of {COLOR_MODES}")
    if not (0.0 <= margin <= MAX_MARGIN):
        raise DetectorError(f"margin: got {margin!r}; expected a fraction in [0, {MAX_MARGIN}]")
    landmarks = np.asarray(face.landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
        raise DetectorError(f"face.landmarks: got shape {landmarks.shape}; expected (5, 2) finite (x, y)")
    return landmarks


def align_face(
    frame_bgr: np.ndarray,
    face: Face,
    size: tuple[int, int] = (48, 48),
    color: ColorMode = "gray",
    margin: float = 0.0,
) -> np.ndarray:
    """Crop ``face`` from ``frame_bgr`` so that its landmarks land on the FER-2013 template.

    frame_bgr: (H, W, 3) BGR uint8 (BGRA and grayscale accepted); size: (width, height) of the crop;
    color: "gray" -> (height, width) uint8, "bgr"/"rgb" -> (height, width, 3) uint8; margin: extra
    context on every side as a fraction of the template framing (0 = FER-2013 framing).
    Parts of the crop outside the frame repeat the frame's edge pixels. Large faces are
    supersampled then area-averaged so that small crops do not alias.
    """
    landmarks = _check_arguments(face, size, color, margin)
    image = to_bgr(frame_bgr, "frame_bgr")
    width, height = int(size[0]), int(size[1])
    matrix = similarity_transform(landmarks, template_points((width, height), margin))
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    factor = max(1, min(MAX_SUPERSAMPLE, math.ceil(1.0 / scale))) if scale > 0 else 1
    if factor > 1:
        # Warp at factor x the size, then area-average: output pixel centre i <-> supersampled i*f + (f-1)/2.
        matrix = matrix * factor
        matrix[:, 2] += (factor - 1) / 2.0
    warped = cv2.warpAffine(
        image,
        matrix,
        (width * factor, height * factor),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if factor > 1:
        warped = cv2.resize(warped, (width, height), interpolation=cv2.INTER_AREA)
    if color == "gray":
        return cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY)
    if color == "rgb":
        return cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)
    return warped
