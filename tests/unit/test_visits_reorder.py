"""The reorder window: frames from parallel detector workers give the same visits as frames in order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodstream.visits import EndedVisit, ReorderError, ReorderWindow, VisitBuilder
from tests.unit.visit_scenes import Frame, scene, sharp_crops, stand, walk


def _released_seqs(window: ReorderWindow, pushes: list[tuple[int, int, int]]) -> list[tuple[int, bool]]:
    out: list[tuple[int, bool]] = []
    for epoch, seq, now in pushes:
        out.extend((r.seq, r.late) for r in window.push(epoch, seq, f"{epoch}:{seq}", now))
    return out


def test_items_in_order_pass_straight_through() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=1000)

    assert _released_seqs(window, [(1, s, s) for s in range(5)]) == [(s, False) for s in range(5)]
    assert len(window) == 0


def test_an_item_ahead_of_its_turn_waits_for_the_missing_one() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=1000)
    window.push(1, 0, "a", 0)

    assert window.push(1, 2, "c", 10) == []
    assert [r.item for r in window.push(1, 1, "b", 20)] == ["b", "c"]


def test_a_frame_that_never_arrives_is_skipped_after_max_wait() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=500)
    window.push(1, 0, "a", 0)
    window.push(1, 2, "c", 100)

    assert window.due(599) == []
    (released,) = window.due(600)
    assert (released.seq, released.skipped, released.late) == (2, 1, False)


def test_a_full_window_skips_the_gap_at_once() -> None:
    window = ReorderWindow(max_frames=3, max_wait_ms=60_000)
    window.push(1, 0, "a", 0)
    for seq in (2, 3, 4):
        assert window.push(1, seq, seq, 0) == []
    released = window.push(1, 5, 5, 0)

    assert [r.seq for r in released] == [2, 3, 4, 5]
    assert released[0].skipped == 1


def test_an_item_whose_place_was_passed_is_released_flagged_late() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=100)
    window.push(1, 0, "a", 0)
    window.push(1, 2, "c", 0)
    window.due(200)  # gives up on seq 1
    (late,) = window.push(1, 1, "b", 300)

    assert (late.seq, late.item, late.late) == (1, "b", True)


def test_a_redelivered_item_still_held_is_flagged_duplicate() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=1000)
    window.push(1, 0, "a", 0)
    window.push(1, 2, "c", 0)
    (again,) = window.push(1, 2, "c again", 5)

    assert again.duplicate and not again.late


def test_a_new_epoch_releases_the_old_one_and_counts_from_zero() -> None:
    window: ReorderWindow[str] = ReorderWindow(max_frames=8, max_wait_ms=1000)
    window.push(1, 5, "old 5", 0)
    window.push(1, 7, "old 7", 0)
    released = window.push(2, 0, "new 0", 10)

    assert [(r.epoch, r.seq) for r in released] == [(1, 5), (1, 7), (2, 0)]
    assert window.push(1, 8, "older epoch", 20)[0].late
    assert window.push(2, 2, "new 2", 30) == []  # waits for seq 1 of the new epoch


def test_the_first_item_seen_of_an_epoch_joined_midway_waits_for_earlier_ones() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=1000)

    assert window.push(1, 41, "b", 0) == []
    assert [r.seq for r in window.push(1, 40, "a", 10)] == []
    assert [r.seq for r in window.due(1000)] == [40, 41]


def test_flush_releases_everything_in_order() -> None:
    window = ReorderWindow(max_frames=8, max_wait_ms=1000)
    for seq in (3, 1, 2):
        window.push(1, seq, seq, 0)

    assert [r.seq for r in window.flush()] == [1, 2, 3]
    assert len(window) == 0


@pytest.mark.parametrize(
    ("name", "args"),
    [("max_frames", (0, 100)), ("max_wait_ms", (8, -1)), ("max_frames", (True, 100))],
)
def test_bad_window_settings_are_rejected(name: str, args: tuple) -> None:
    with pytest.raises(ReorderError, match=name):
        ReorderWindow(*args)


@pytest.mark.parametrize(("epoch", "seq", "name"), [(-1, 0, "epoch"), (1, -5, "seq"), (1, 2.0, "seq")])
def test_bad_frame_identities_are_rejected(epoch, seq, name: str) -> None:
    with pytest.raises(ReorderError, match=name):
        ReorderWindow(8, 100).push(epoch, seq, None, 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(0, 8), st.randoms(use_true_random=False))
def test_any_bounded_disorder_is_undone_exactly(count: int, spread: int, rng: random.Random) -> None:
    arrival = sorted(range(count), key=lambda i: i + rng.uniform(0, spread))
    window: ReorderWindow[int] = ReorderWindow(max_frames=2 * spread + 1, max_wait_ms=10_000)
    released = [r for seq in arrival for r in window.push(3, seq, seq, 0)] + window.flush()

    assert [r.item for r in released] == list(range(count))
    assert not any(r.late or r.duplicate or r.skipped for r in released)


# ---------------------------------------------------------------------------- same visits in any order


def _visits_in_order(frames: list[Frame]) -> list[EndedVisit]:
    builder = VisitBuilder()
    out = []
    for frame in frames:
        out.extend(builder.observe(frame.captured_ms, frame.faces, sharp_crops(len(frame.faces))).ended)
    return out + list(builder.flush())


def _visits_through_window(frames: list[Frame], arrival: list[int]) -> list[EndedVisit]:
    window: ReorderWindow[Frame] = ReorderWindow(max_frames=16, max_wait_ms=5000)
    builder = VisitBuilder()
    out: list[EndedVisit] = []

    def feed(released) -> None:
        for r in released:
            assert not r.late
            faces = r.item.faces
            out.extend(builder.observe(r.item.captured_ms, faces, sharp_crops(len(faces))).ended)

    for now, index in enumerate(arrival):
        feed(window.push(7, index, frames[index], now))
    feed(window.flush())
    return out + list(builder.flush())


def _summary(visits: list[EndedVisit]) -> list[tuple]:
    return [
        (v.started_ms, v.last_seen_ms, v.faces, v.readable_faces, tuple(x.captured_ms for x in v.votes))
        for v in visits
    ]


@pytest.mark.parametrize("seed", range(5))
def test_any_arrival_order_within_the_window_gives_the_same_visits(seed: int) -> None:
    paths = [walk(40, 600, 200, 60, 0, 8), walk(600, 40, 210, 60, 2, 10), stand(320, 400, 50, 1, 12)]
    frames = list(scene(paths, 14, 5, seed=seed))
    rng = random.Random(seed)
    # Parallel workers: each frame finishes up to 8 positions late.
    arrival = sorted(range(len(frames)), key=lambda i: i + rng.uniform(0, 8))

    expected = _visits_in_order(frames)
    assert len(expected) == 3
    assert _summary(_visits_through_window(frames, arrival)) == _summary(expected)
