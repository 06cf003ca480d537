"""Area resampling from integral images equals adaptive average pooling computed pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from moodstream.detector.resample import crop_windows, integral_images, pool_bins, pyramid_level


def pooled_by_loops(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Adaptive average pooling of (H, W, 3) to (height, width, 3), written plainly."""
    in_h, in_w = image.shape[:2]
    out = np.zeros((height, width, 3))
    for i in range(height):
        y0, y1 = (i * in_h) // height, -((-(i + 1) * in_h) // height)
        for j in range(width):
            x0, x1 = (j * in_w) // width, -((-(j + 1) * in_w) // width)
            out[i, j] = image[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    return out


@pytest.fixture
def frames() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)


def test_pool_bins_cover_input_with_ceil_ends() -> None:
    starts, ends = pool_bins(10, 4)
    assert starts.tolist() == [0, 2, 5, 7]
    assert ends.tolist() == [3, 5, 8, 10]


def test_integral_images_are_prefix_sums(frames: np.ndarray) -> None:
    table = integral_images(frames)
    assert table.shape == (2, 38, 54, 3)
    assert table[1, 20, 30, 2] == frames[1, :20, :30, 2].astype(np.int64).sum()


@pytest.mark.parametrize(("height", "width"), [(37, 53), (23, 31), (12, 12), (5, 40), (40, 60)])
def test_pyramid_level_equals_adaptive_average_pooling(frames: np.ndarray, height: int, width: int) -> None:
    level = pyramid_level(integral_images(frames), height, width)
    assert level.shape == (2, height, width, 3) and level.dtype == np.float32
    for index in range(2):
        np.testing.assert_allclose(
            level[index], pooled_by_loops(frames[index], height, width), rtol=1e-6, atol=1e-4
        )


@pytest.mark.parametrize("size", [24, 48])
def test_crop_windows_equal_pooling_of_the_window(frames: np.ndarray, size: int) -> None:
    windows = np.array([[0, 0, 53, 37], [10, 5, 20, 30], [40, 30, 53, 37], [3, 4, 4, 5]])
    frame_index = np.array([0, 1, 1, 0])
    crops = crop_windows(integral_images(frames), frame_index, windows, size)
    assert crops.shape == (4, size, size, 3) and crops.dtype == np.float32
    for crop, b, (x0, y0, x1, y1) in zip(crops, frame_index, windows, strict=True):
        expected = pooled_by_loops(frames[b, y0:y1, x0:x1], size, size)
        np.testing.assert_allclose(crop, expected, rtol=1e-6, atol=1e-4)
