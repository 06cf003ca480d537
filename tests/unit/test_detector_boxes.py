"""Box arithmetic of the MTCNN stages: NMS, regression, squaring, crop windows at frame borders."""

from __future__ import annotations

import numpy as np
import pytest

from moodstream.detector.boxes import apply_regression, crop_windows_in_frame, nms, square_boxes


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_nms_keeps_highest_and_drops_overlapping() -> None:
    b = boxes((0, 0, 10, 10), (1, 1, 11, 11), (20, 20, 30, 30))
    keep = nms(b, np.array([0.8, 0.9, 0.7], np.float32), np.zeros(3, np.int64), 0.5)
    assert keep.tolist() == [1, 2]  # highest score first; box 0 overlaps box 1 with IoU 81/119 > 0.5


def test_nms_threshold_is_strict() -> None:
    # IoU of these two boxes is exactly 0.5 (intersection 50, union 100): kept at threshold 0.5.
    b = boxes((0, 0, 10, 7.5), (0, 2.5, 10, 10))
    assert sorted(nms(b, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64), 0.5).tolist()) == [0, 1]
    assert nms(b, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64), 0.49).tolist() == [0]


def test_nms_groups_are_independent() -> None:
    b = boxes((0, 0, 10, 10), (0, 0, 10, 10))
    keep = nms(b, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.3)
    assert sorted(keep.tolist()) == [0, 1]


def test_nms_min_mode_drops_box_inside_bigger_one() -> None:
    b = boxes((0, 0, 100, 100), (10, 10, 30, 30))  # IoU 0.04, overlap over the smaller area 1.0
    scores = np.array([0.9, 0.8], np.float32)
    groups = np.zeros(2, np.int64)
    assert sorted(nms(b, scores, groups, 0.7).tolist()) == [0, 1]
    assert nms(b, scores, groups, 0.7, mode="min").tolist() == [0]


def test_nms_inclusive_counts_pixels() -> None:
    # Touching boxes: no overlap in coordinates, one shared pixel column when counting pixels.
    b = boxes((0, 0, 9, 9), (9, 0, 18, 9))
    scores = np.array([0.9, 0.8], np.float32)
    groups = np.zeros(2, np.int64)
    assert len(nms(b, scores, groups, 0.05)) == 2
    assert len(nms(b, scores, groups, 0.05, inclusive=True)) == 1  # 10 / 190 > 0.05


def test_nms_empty() -> None:
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).shape == (
        0,
    )


@pytest.mark.parametrize(
    ("inclusive", "expected"),
    [
        (False, [10 + 0.05 * 20, 20 - 0.05 * 40, 30 + 0.1 * 20, 60 + 0.1 * 40]),  # width 20, height 40
        (True, [10 + 0.05 * 21, 20 - 0.05 * 41, 30 + 0.1 * 21, 60 + 0.1 * 41]),  # counted in pixels: 21, 41
    ],
)
def test_apply_regression_scales_offsets_by_box_size(inclusive: bool, expected: list[float]) -> None:
    offsets = np.array([[0.05, -0.05, 0.1, 0.1]], np.float32)
    np.testing.assert_allclose(
        apply_regression(boxes((10, 20, 30, 60)), offsets, inclusive)[0], expected, rtol=1e-5
    )


def test_square_boxes_keeps_centre_and_takes_longer_side() -> None:
    out = square_boxes(boxes((10, 20, 30, 60), (0, 0, 50, 10)))
    np.testing.assert_allclose(out, [[0, 20, 40, 60], [0, -20, 50, 30]])


def test_crop_windows_clip_to_frame_and_drop_outside_boxes() -> None:
    b = boxes(
        (10.7, 20.2, 30.9, 40.5),  # inside: truncated, 1-based start
        (-15.0, -5.0, 12.0, 8.0),  # over the top-left corner
        (90.0, 40.0, 130.0, 80.0),  # over the bottom-right corner (frame 100 wide, 50 high)
        (120.0, 10.0, 140.0, 30.0),  # wholly right of the frame
        (-30.0, -30.0, -1.0, -1.0),  # wholly above-left
    )
    windows, valid = crop_windows_in_frame(b, 50, 100)
    assert valid.tolist() == [True, True, True, False, False]
    assert windows.tolist() == [[9, 19, 30, 40], [0, 0, 12, 8], [89, 39, 100, 50]]


# overlap-matrix path, per-group split of a large batch, row-by-row loop of one large group
@pytest.mark.parametrize(("count", "group_count"), [(60, 3), (3000, 3), (2100, 1)])
def test_nms_matches_plain_greedy_reference(count: int, group_count: int) -> None:
    rng = np.random.default_rng(count)
    corner = rng.uniform(0, 300, (count, 2))
    size = rng.uniform(5, 60, (count, 1))
    b = np.hstack([corner, corner + size]).astype(np.float32)
    scores = rng.uniform(0, 1, count).astype(np.float32)
    groups = rng.integers(0, group_count, count)
    expected = []
    for i in np.argsort(-scores, kind="stable"):
        ok = True
        for j in expected:
            if groups[i] != groups[j]:
                continue
            iw = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            ih = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            inter = iw * ih
            union = (
                (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            )
            if inter / union > 0.5:
                ok = False
                break
        if ok:
            expected.append(i)
    assert nms(b, scores, groups, 0.5).tolist() == expected
