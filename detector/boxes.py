"""Box arithmetic of MTCNN: non-maximum suppression, regression, squaring and crop windows.

Boxes are (K, 4) float32 arrays [x1, y1, x2, y2] in pixel coordinates of the frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

OverlapMode = Literal["union", "min"]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    threshold: float,
    mode: OverlapMode = "union",
    inclusive: bool = False,
) -> np.ndarray:
    """Greedy non-maximum suppression, independently per group (e.g. per frame).

    boxes (K, 4), scores (K,), groups (K,) int. A box is dropped when its overlap with a kept box of
    the same group and higher score is > ``threshold``. Overlap is intersection over union ("union")
    or over the smaller area ("min"); ``inclusive`` counts pixels (width = x2 - x1 + 1).
    Returns the kept indices (int64), highest score first.
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    coords = boxes[order].astype(np.float64)
    # Shift each group far apart so that boxes of different groups never overlap.
    shift = (groups[order].astype(np.float64) * (np.abs(coords).max() * 2 + 2))[:, None]
    x1, y1, x2, y2 = (coords + shift).T
    extra = 1.0 if inclusive else 0.0
    areas = (x2 - x1 + extra) * (y2 - y1 + extra)
    keep: list[int] = []
    remaining = np.arange(len(order))  # positions in score order, not yet kept or suppressed
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(int(best))
        inter_w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + extra
        inter_h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + extra
        inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)
        if mode == "min":
            overlap = inter / np.minimum(areas[best], areas[rest])
        else:
            overlap = inter / (areas[best] + areas[rest] - inter)
        remaining = rest[~(overlap > threshold)]  # NaN (empty boxes) never suppresses
    return order[np.asarray(keep, dtype=np.int64)]


def apply_regression(boxes: np.ndarray, offsets: np.ndarray, inclusive: bool) -> np.ndarray:
    """Move box edges by offsets (K, 4) given as fractions of the box width/height.

    ``inclusive`` measures width as x2 - x1 + 1 (R-Net/O-Net); P-Net proposals use x2 - x1.
    Returns new (K, 4) float32 boxes.
    """
    extra = np.float32(1.0 if inclusive else 0.0)
    width = boxes[:, 2] - boxes[:, 0] + extra
    height = boxes[:, 3] - boxes[:, 1] + extra
    scale = np.stack([width, height, width, height], axis=1)
    return (boxes + offsets.astype(np.float32) * scale).astype(np.float32)


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square of side max(width, height) around the same centre. (K, 4) -> (K, 4)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + width * np.float32(0.5) - side * np.float32(0.5)
    y1 = boxes[:, 1] + height * np.float32(0.5) - side * np.float32(0.5)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.float32)


def crop_windows_in_frame(boxes: np.ndarray, frame_height: int, frame_width: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of each box inside the frame, as integer pixel windows.

    Coordinates are truncated towards zero, then the window is rows trunc(y1)-1 .. trunc(y2)-1 and
    columns trunc(x1)-1 .. trunc(x2)-1 (MTCNN's 1-based convention) clipped to the frame; the crop
    is stretched to the network input, as the reference MTCNN does (no zero padding).
    Returns (windows (K', 4) int64 [x0, y0, x1, y1] exclusive ends, valid (K,) bool): boxes wholly
    outside the frame are not valid and get no window.
    """
    ints = np.trunc(boxes).astype(np.int64)
    x0 = np.maximum(ints[:, 0], 1) - 1
    y0 = np.maximum(ints[:, 1], 1) - 1
    x1 = np.minimum(ints[:, 2], frame_width)
    y1 = np.minimum(ints[:, 3], frame_height)
    valid = (x1 > x0) & (y1 > y0)
    return np.stack([x0, y0, x1, y1], axis=1)[valid], valid
