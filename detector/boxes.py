"""Box arithmetic of MTCNN: non-maximum suppression, regression, squaring and crop windows.

Boxes are (K, 4) float32 arrays [x1, y1, x2, y2] in pixel coordinates of the frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

OverlapMode = Literal["union", "min"]


#: Up to this many boxes, NMS precomputes the whole overlap matrix (n * n bytes) instead of looping.
NMS_MATRIX_LIMIT = 2048


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
    if len(boxes) > NMS_MATRIX_LIMIT and np.unique(groups).size > 1:  # groups one by one: smaller matrices
        kept = [
            members[nms(boxes[members], scores[members], groups[members], threshold, mode, inclusive)]
            for members in (np.flatnonzero(groups == g) for g in np.unique(groups))
        ]
        merged = np.concatenate(kept)
        return merged[np.argsort(-scores[merged], kind="stable")]
    order = np.argsort(-scores, kind="stable")
    extra = 1.0 if inclusive else 0.0
    if len(order) <= NMS_MATRIX_LIMIT:
        keep = _greedy_with_matrix(boxes[order].astype(np.float32), groups[order], extra, threshold, mode)
    else:
        coords = boxes[order].astype(np.float64)
        # Shift each group far apart so that boxes of different groups never overlap.
        coords += (groups[order].astype(np.float64) * (np.abs(coords).max() * 2 + 2))[:, None]
        keep = _greedy_with_loop(coords, extra, threshold, mode)
    return order[np.asarray(keep, dtype=np.int64)]


def _overlap(
    coords: np.ndarray,
    rows: np.ndarray | int,
    cols: np.ndarray,
    extra: float | np.floating,
    mode: OverlapMode,
) -> np.ndarray:
    """Overlap of boxes ``rows`` (scalar or (R, 1) index) with boxes ``cols`` ((C,) index)."""
    x1, y1, x2, y2 = coords.T
    area = (x2 - x1 + extra) * (y2 - y1 + extra)
    inter_w = np.minimum(x2[rows], x2[cols]) - np.maximum(x1[rows], x1[cols]) + extra
    inter_h = np.minimum(y2[rows], y2[cols]) - np.maximum(y1[rows], y1[cols]) + extra
    inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)
    union = np.minimum(area[rows], area[cols]) if mode == "min" else area[rows] + area[cols] - inter
    overlap: np.ndarray = inter / union
    return overlap


def _greedy_with_matrix(
    coords: np.ndarray, groups: np.ndarray, extra: float, threshold: float, mode: OverlapMode
) -> list[int]:
    """Greedy NMS over score-sorted boxes using the full suppression matrix; kept positions."""
    index = np.arange(len(coords))
    with np.errstate(invalid="ignore", divide="ignore"):
        suppresses = _overlap(coords, index[:, None], index, np.float32(extra), mode) > threshold  # NaN: no
    suppresses &= groups[:, None] == groups[None, :]
    suppresses = np.triu(suppresses, 1)  # a box only suppresses lower-scored ones
    dropped = np.zeros(len(coords), dtype=bool)
    for i in np.flatnonzero(suppresses.any(axis=1)):  # boxes that suppress nothing change nothing
        if not dropped[i]:
            dropped |= suppresses[i]
    kept: list[int] = np.flatnonzero(~dropped).tolist()
    return kept


def _greedy_with_loop(coords: np.ndarray, extra: float, threshold: float, mode: OverlapMode) -> list[int]:
    """Greedy NMS over score-sorted boxes, one overlap row per kept box (for many boxes); kept positions."""
    keep: list[int] = []
    remaining = np.arange(len(coords))  # positions not yet kept or suppressed
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(int(best))
        with np.errstate(invalid="ignore", divide="ignore"):
            overlap = _overlap(coords, best, rest, extra, mode)
        remaining = rest[~(overlap > threshold)]  # NaN (empty boxes) never suppresses
    return keep


def apply_regression(boxes: np.ndarray, offsets: np.ndarray, inclusive: bool) -> np.ndarray:
    """Move box edges by offsets (K, 4) given as fractions of the box width/height.

    ``inclusive`` measures width as x2 - x1 + 1 (R-Net/O-Net); P-Net proposals use x2 - x1.
    Returns new (K, 4) float32 boxes.
    """
    extra = np.float32(1.0 if inclusive else 0.0)
    width = boxes[:, 2] - boxes[:, 0] + extra
    height = boxes[:, 3] - boxes[:, 1] + extra
    scale = np.stack([width, height, width, height], axis=1)
    refined: np.ndarray = (boxes + offsets.astype(np.float32) * scale).astype(np.float32)
    return refined


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square of side max(width, height) around the same centre. (K, 4) -> (K, 4)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + width * np.float32(0.5) - side * np.float32(0.5)
    y1 = boxes[:, 1] + height * np.float32(0.5) - side * np.float32(0.5)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.float32)


def crop_windows_in_frame(
    boxes: np.ndarray, frame_height: int, frame_width: int
) -> tuple[np.ndarray, np.ndarray]:
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
