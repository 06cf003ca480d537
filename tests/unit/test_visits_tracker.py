"""Visits from tracked faces: people standing, crossing, hidden and returning, at sampled rates."""

from __future__ import annotations

import numpy as np
import pytest

from moodstream.visits import FaceTracker, TrackerConfig, VisitBuilder, VisitConfig, VisitsError
from tests.unit.visit_scenes import Frame, face, run, scene, sharp_crops, stand, walk

RATES = [2, 5, 10]


def _ids_of(person: int, frames: list[Frame], ids: list) -> set[int]:
    """The track ids given to one person's faces over all frames (one id = never switched)."""
    return {
        tid
        for frame, row in zip(frames, ids, strict=True)
        for p, tid in zip(frame.people, row, strict=True)
        if p == person
    }


@pytest.mark.parametrize("fps", RATES)
def test_one_person_standing_for_a_minute_is_one_visit(fps: int) -> None:
    visits, frames, _ = run(scene([stand(320, 240, 80, 0, 60)], 60, fps))

    assert len(visits) == 1
    assert visits[0].faces == len(frames)
    assert visits[0].dwell_ms == frames[-1].captured_ms - frames[0].captured_ms


@pytest.mark.parametrize("fps", RATES)
def test_two_people_crossing_paths_are_two_visits_that_keep_their_ids(fps: int) -> None:
    # Faces 60 px wide walking 120 px/s towards each other on nearly the same line (2 faces/s).
    paths = [walk(40, 600, 240, 60, 0, 5), walk(600, 40, 250, 60, 0, 5)]
    visits, frames, ids = run(scene(paths, 5.2, fps))

    assert len(visits) == 2
    assert len(_ids_of(0, frames, ids)) == 1
    assert len(_ids_of(1, frames, ids)) == 1


@pytest.mark.parametrize("fps", RATES)
def test_a_fast_walker_at_a_low_rate_stays_one_visit(fps: int) -> None:
    # 60 px faces crossing 600 px in 1.5 s: 400 px/s, 3.3 face widths between frames at 2 fps.
    visits, frames, ids = run(scene([walk(20, 620, 200, 60, 0, 1.5)], 1.6, fps))

    assert len(visits) == 1
    assert len(_ids_of(0, frames, ids)) == 1


@pytest.mark.parametrize("fps", RATES)
def test_a_person_hidden_for_one_second_stays_one_visit(fps: int) -> None:
    walking = walk(100, 500, 240, 70, 0, 10)
    hidden = lambda t: None if 4.0 <= t < 5.0 else walking(t)  # noqa: E731
    visits, _, _ = run(scene([hidden], 10, fps))

    assert len(visits) == 1


@pytest.mark.parametrize("fps", RATES)
def test_a_person_who_leaves_and_returns_after_a_minute_is_two_visits(fps: int) -> None:
    there = stand(320, 240, 80, 0, 10)
    back = stand(320, 240, 80, 70, 80)
    visits, _, _ = run(scene([lambda t: there(t) or back(t)], 80, fps))

    assert len(visits) == 2
    assert visits[0].dwell_ms == pytest.approx(10_000, abs=1000)
    assert visits[1].started_ms - visits[0].last_seen_ms >= 59_000


def test_visits_end_when_their_track_expires_not_only_at_flush() -> None:
    config = VisitConfig(tracker=TrackerConfig(max_gap_seconds=2.0))
    builder = VisitBuilder(config)
    ended_at = []
    for frame in scene([stand(320, 240, 80, 0, 5)], 10, 5):
        result = builder.observe(frame.captured_ms, frame.faces, sharp_crops(len(frame.faces)))
        if result.ended:
            ended_at.append(frame.captured_ms)
            last_seen = result.ended[0].last_seen_ms
    assert len(ended_at) == 1
    assert 2000 < ended_at[0] - last_seen <= 2200
    assert builder.flush() == ()


def test_a_one_frame_false_detection_is_not_a_visit() -> None:
    builder = VisitBuilder()
    builder.observe(1000, [face(100, 100, 50)], sharp_crops(1))
    for k in range(1, 20):
        builder.observe(1000 + 200 * k, [], None)
    assert builder.flush() == ()


def test_people_standing_side_by_side_are_separate_visits() -> None:
    paths = [stand(100 + 90 * k, 240, 70, 0, 20) for k in range(6)]
    visits, frames, ids = run(scene(paths, 20, 5, jitter=3.0))

    assert len(visits) == 6
    assert all(len(_ids_of(p, frames, ids)) == 1 for p in range(6))


def test_low_score_boxes_continue_tracks_but_do_not_start_them() -> None:
    tracker = FaceTracker()
    box = np.array([[100.0, 100.0, 160.0, 160.0]])
    first = tracker.update(0, box, np.array([0.99]))
    kept = tracker.update(200, box + 3, np.array([0.75]))
    alone = tracker.update(400, box + 400, np.array([0.75]))

    assert kept[0] == first[0]
    assert alone[0] == -1


def test_tracker_rejects_malformed_boxes() -> None:
    tracker = FaceTracker()
    with pytest.raises(VisitsError, match=r"boxes: expected shape \(N, 4\)"):
        tracker.update(0, np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(VisitsError, match="scores"):
        tracker.update(0, np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(VisitsError, match="x2 >= x1"):
        tracker.update(0, np.array([[10.0, 10.0, 5.0, 20.0]]), np.ones(1))
    with pytest.raises(VisitsError, match="captured_ms"):
        tracker.update(1.5, np.zeros((0, 4)), np.zeros(0))  # type: ignore[arg-type]


def test_builder_rejects_crops_that_do_not_match_the_faces() -> None:
    with pytest.raises(VisitsError, match="expected 2 crops"):
        VisitBuilder().observe(0, [face(50, 50, 40), face(150, 50, 40)], sharp_crops(1))


def test_someone_entering_where_another_just_left_the_frame_is_a_new_visit() -> None:
    # A walks out of the right edge; 1 s later B enters at the same place, walking left.
    leaving = walk(400, 700, 240, 60, 0, 2)
    entering = walk(640, 300, 240, 60, 2.6, 5)
    builder, visits = VisitBuilder(), []
    for frame in scene([leaving, entering], 5, 5):
        inside = [f for f in frame.faces if f.box[0] < 640]
        result = builder.observe(frame.captured_ms, inside, sharp_crops(len(inside)), frame_size=(640, 480))
        visits.extend(result.ended)
    visits.extend(builder.flush())

    assert len(visits) == 2


def test_a_track_predicted_outside_the_frame_ends_when_it_finds_no_box() -> None:
    tracker = FaceTracker()
    for k in range(5):
        tracker.update(200 * k, np.array([[500.0 + 40 * k, 200.0, 560.0 + 40 * k, 260.0]]), np.ones(1))
    tracker.update(1000, np.zeros((0, 4)), np.zeros(0), frame_size=(640, 480))

    assert tracker.ended(1000) == [1]


@pytest.mark.parametrize("fps", RATES)
def test_a_walker_hidden_behind_another_while_crossing_keeps_their_visit(fps: int) -> None:
    near, far = walk(40, 600, 240, 70, 0, 5), walk(600, 40, 236, 60, 0, 5)

    def behind(t: float):
        a, b = near(t), far(t)
        return None if a and b and abs(a[0] - b[0]) < 70 else b

    visits, frames, ids = run(scene([near, behind], 5.2, fps))

    assert len(visits) == 2
    assert len(_ids_of(0, frames, ids)) == 1
    assert len(_ids_of(1, frames, ids)) == 1
