"""The face-quality gate, the votes a visit keeps, and the bounds of the visits settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from moodstream.visits import GateConfig, QualityGate, TrackerConfig, VisitBuilder, VisitConfig
from moodstream.visits.gate import head_yaw, sharpness
from tests.unit.visit_scenes import face, run, scene, sharp_crops, stand, walk


def test_a_clear_frontal_face_is_readable_with_a_high_quality() -> None:
    verdict = QualityGate().assess(face(100, 100, 80), sharp_crops(1)[0])

    assert verdict.readable and verdict.reason is None
    assert 0.5 < verdict.quality <= 1.0


@pytest.mark.parametrize(
    ("detected", "reason"),
    [
        (face(100, 100, 24), "small"),
        (face(100, 100, 80, score=0.8), "low score"),
        (face(100, 100, 80, turn=0.6), "turned"),
    ],
)
def test_faces_failing_a_check_are_unreadable_with_the_reason(detected, reason: str) -> None:
    verdict = QualityGate().assess(detected, sharp_crops(1)[0])

    assert not verdict.readable
    assert verdict.reason == reason


def test_a_blurred_crop_is_unreadable() -> None:
    crop = sharp_crops(1)[0]
    blurred = cv2.GaussianBlur(crop, (0, 0), 3.0)

    assert sharpness(blurred) < GateConfig().min_sharpness < sharpness(crop)
    assert QualityGate().assess(face(100, 100, 80), blurred).reason == "blurred"


def test_a_flat_crop_has_no_sharpness() -> None:
    assert sharpness(np.full((48, 48), 128, np.uint8)) == 0.0


def test_head_yaw_grows_as_the_head_turns() -> None:
    yaws = [head_yaw(face(100, 100, 80, turn=t).landmarks) for t in (0.0, 0.2, 0.5)]

    assert yaws[0] == pytest.approx(0.0, abs=1e-9)
    assert yaws[0] < yaws[1] < yaws[2]
    assert head_yaw([(10, 10), (10, 10), (10, 20), (5, 30), (15, 30)]) == float("inf")


def test_quality_ranks_larger_and_more_frontal_faces_higher() -> None:
    gate, crop = QualityGate(), sharp_crops(1)[0]

    assert gate.assess(face(100, 100, 40), crop).quality < gate.assess(face(100, 100, 60), crop).quality
    assert (
        gate.assess(face(100, 100, 60, turn=0.3), crop).quality
        < gate.assess(face(100, 100, 60), crop).quality
    )


def test_faces_all_below_the_gate_give_visits_without_votes() -> None:
    paths = [stand(100, 100, 20, 0, 30), walk(50, 600, 300, 24, 5, 25)]
    visits, _, _ = run(scene(paths, 30, 5))

    assert len(visits) == 2
    assert all(v.readable_faces == 0 and v.votes == () and v.faces > 50 for v in visits)


@pytest.mark.parametrize("max_votes", [1, 3, 5])
def test_a_visit_keeps_at_most_k_votes_and_they_are_its_best(max_votes: int) -> None:
    # A person approaching the camera: the face grows from 34 to 90 px, so later faces are better.
    approach = lambda t: (320.0, 240.0, 34.0 + 56.0 * t / 20.0)  # noqa: E731
    builder = VisitBuilder(VisitConfig(max_votes=max_votes))
    qualities = []
    for k, frame in enumerate(scene([approach], 20, 5, jitter=0.5)):
        crops = sharp_crops(1, seed=k)
        result = builder.observe(frame.captured_ms, frame.faces, crops)
        qualities.append(result.qualities[0].quality)
    (visit,) = builder.flush()

    best = sorted(qualities, reverse=True)[:max_votes]
    assert [vote.quality for vote in visit.votes] == best
    assert visit.readable_faces == len(qualities)


def test_votes_hold_copies_of_the_crops() -> None:
    builder = VisitBuilder()
    crops = sharp_crops(1)
    for k in range(5):
        builder.observe(1000 + 200 * k, [face(100, 100, 80)], crops)
    saved = crops.copy()
    crops[:] = 0
    (visit,) = builder.flush()

    assert all(np.array_equal(vote.crop, saved[0]) for vote in visit.votes)


def test_without_crops_faces_are_gated_but_no_votes_are_kept() -> None:
    builder = VisitBuilder()
    for k in range(5):
        builder.observe(1000 + 200 * k, [face(100, 100, 80)], None)
    (visit,) = builder.flush()

    assert visit.readable_faces == 5 and visit.votes == ()


# ---------------------------------------------------------------------------- settings out of range

BAD_SETTINGS = [
    (GateConfig, {"min_face_size": 4}, "min_face_size"),
    (GateConfig, {"min_face_size": 10_000}, "min_face_size"),
    (GateConfig, {"min_score": 1.5}, "min_score"),
    (GateConfig, {"min_score": -0.1}, "min_score"),
    (GateConfig, {"min_sharpness": -1}, "min_sharpness"),
    (GateConfig, {"max_yaw": 0}, "max_yaw"),
    (GateConfig, {"max_yaw": 5}, "max_yaw"),
    (GateConfig, {"min_size": 32}, "min_size"),
    (TrackerConfig, {"max_gap_seconds": 0}, "max_gap_seconds"),
    (TrackerConfig, {"max_gap_seconds": 3600}, "max_gap_seconds"),
    (TrackerConfig, {"min_frames": 0}, "min_frames"),
    (TrackerConfig, {"min_iou": 1.0}, "min_iou"),
    (TrackerConfig, {"high_score": 2}, "high_score"),
    (TrackerConfig, {"max_size_ratio": 1.0}, "max_size_ratio"),
    (VisitConfig, {"max_votes": 0}, "max_votes"),
    (VisitConfig, {"max_votes": 1000}, "max_votes"),
    (VisitConfig, {"gate": {"min_score": 3}}, "min_score"),
]


@pytest.mark.parametrize(("model", "values", "field"), BAD_SETTINGS)
def test_settings_out_of_range_are_rejected_naming_the_field(model, values: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        model(**values)


def test_every_setting_has_a_description() -> None:
    for model in (GateConfig, TrackerConfig, VisitConfig):
        assert all(info.description for info in model.model_fields.values()), model.__name__


def test_assessing_a_frame_at_once_agrees_with_one_face_at_a_time() -> None:
    faces = [face(100, 100, 80), face(300, 100, 24), face(500, 100, 60, turn=0.5)]
    crops = sharp_crops(3)
    crops[2] = cv2.GaussianBlur(crops[2], (0, 0), 3.0)
    gate = QualityGate()

    assert gate.assess_all(faces, crops) == tuple(
        gate.assess(f, c) for f, c in zip(faces, crops, strict=True)
    )
    assert gate.assess_all([], None) == ()
