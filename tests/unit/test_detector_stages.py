"""MTCNN stage helpers: pyramid scales, exact tiling of P-Net runs, sharing work over threads."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from moodstream.detector.models import MTCNNSessions
from moodstream.detector.stages import SERIAL, WorkMap, pnet_output_rows, pyramid_scales, run_pnet_tiled


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


@pytest.mark.parametrize(
    ("count", "largest", "workers", "expected"),
    [
        (40, 16, 1, [(0, 13), (13, 27), (27, 40)]),  # as even as possible, none over 16
        (40, 16, 2, [(0, 10), (10, 20), (20, 30), (30, 40)]),  # a multiple of 2 pieces
        (12, 4, 2, [(0, 3), (3, 6), (6, 9), (9, 12)]),
        (3, 4, 2, [(0, 2), (2, 3)]),
        (1, 16, 2, [(0, 1)]),  # never an empty piece
        (0, 16, 2, []),
    ],
)
def test_work_map_chunks_are_even_and_shared_by_the_workers(
    count: int, largest: int, workers: int, expected: list[tuple[int, int]]
) -> None:
    with ThreadPoolExecutor(max(1, workers - 1)) as pool:
        assert WorkMap(pool, workers).chunks(count, largest) == expected


def test_work_map_keeps_item_order_and_uses_every_worker() -> None:
    def slow_square(item: int) -> tuple[int, str]:
        time.sleep(0.01)
        return item * item, threading.current_thread().name

    with ThreadPoolExecutor(1, thread_name_prefix="helper") as pool:
        results = WorkMap(pool, 2)(slow_square, list(range(8)))
    assert [value for value, _ in results] == [i * i for i in range(8)]
    assert {name.startswith("helper") for _, name in results} == {True, False}  # caller and helper
    assert [value for value, _ in SERIAL(slow_square, [3, 4])] == [9, 16]


def test_work_map_raises_a_worker_error_after_all_workers_stop() -> None:
    done: list[int] = []

    def fail_on_three(item: int) -> int:
        if item == 3:
            raise ValueError("bad item 3")
        time.sleep(0.005)
        done.append(item)
        return item

    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="bad item 3"):
        WorkMap(pool, 2)(fail_on_three, list(range(8)))
    assert sorted(done) == [i for i in range(8) if i != 3]  # the other items still ran, none twice
