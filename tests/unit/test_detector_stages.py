"""MTCNN stage helpers: pyramid scales and exact tiling of P-Net runs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detector.models import MTCNNSessions
from detector.stages import pnet_output_rows, pyramid_scales, run_pnet_tiled


def test_pyramid_scales_follow_the_reference_rule() -> None:
    scales = pyramid_scales(270, 480, 20, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert len(scales) == 8  # 270 * 0.6 * 0.709**k >= 12 for k = 0..7
    assert all(b / a == pytest.approx(0.709) for a, b in itertools.pairwise(scales))
    assert min(270, 480) * scales[-1] >= 12 > min(270, 480) * scales[-1] * 0.709
    assert pyramid_scales(19, 400, 20, 0.709) == []  # 19 * 0.6 < 12: too small for a 20 px face


@pytest.mark.parametrize(("height", "expected"), [(12, 1), (13, 2), (14, 2), (24, 7), (163, 77)])
def test_pnet_output_rows(height: int, expected: int) -> None:
    assert pnet_output_rows(height) == expected


@pytest.fixture(scope="module")
def sessions() -> MTCNNSessions:
    return MTCNNSessions.load(None, ["CPUExecutionProvider"], 1)


# strips of one frame; several frames per run; a tall narrow frame in strips
@pytest.mark.parametrize(
    ("count", "height", "width", "tile"), [(3, 97, 130, 5_000), (5, 40, 50, 5_000), (1, 200, 33, 4_096)]
)
def test_tiled_pnet_equals_one_run(
    sessions: MTCNNSessions, count: int, height: int, width: int, tile: int
) -> None:
    level = np.random.default_rng(height).uniform(0, 255, (count, height, width, 3)).astype(np.float32)
    regression, face_prob = sessions.run_pnet(level)
    tiled_regression, tiled_prob = run_pnet_tiled(sessions, level, tile)
    assert tiled_prob.shape == face_prob.shape == (count, pnet_output_rows(height), pnet_output_rows(width))
    np.testing.assert_allclose(tiled_prob, face_prob, atol=1e-6)
    np.testing.assert_allclose(tiled_regression, regression, atol=1e-5)
