"""Masks and zones of a camera: stores.yaml validation with the line of each mistake, zones of faces and
visits, the wire form of a visit's zone, masked faces never detected, and masks/zones drawn by analyze."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodstream.cli.analyze import MASK_COLOR_BGR, ZONE_COLOR_BGR, annotate
from moodstream.common.streams import StreamNames
from moodstream.runtime.clip_analysis import ClipVisits, FrameTracks
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.scene import CameraScene
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.worker import Entry
from moodstream.schemas.jpeg import encode_jpeg
from moodstream.schemas.messages import (
    DetectedFace,
    FacesMessage,
    FrameKey,
    FrameMessage,
    MessageError,
    VisitEmotion,
    VisitRecord,
)
from moodstream.schemas.regions import Zone, box_zone, zone_at
from moodstream.schemas.registry import RegistryError, load_registry
from moodstream.visits import VisitBuilder

HEADER = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: UTC
    cameras:
      - id: door
        source: door.mp4
        fps: 2
"""
LEFT = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
RIGHT = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "stores.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(extra), " " * 8))
    return load_registry(path)


@pytest.mark.parametrize(
    ("extra", "line", "key", "message"),
    [
        ("masks:\n  - [[0, 0], [1, 1], [1, 0], [0, 1]]\n", 11, "masks[0]", "intersects itself: edge 1"),
        (
            "masks:\n  - [[0, 0], [1.2, 0], [1, 1]]\n",
            11,
            "masks[0]",
            "point 2 [1.2, 0] lies outside the frame",
        ),
        ("masks:\n  - [[0, 0], [-0.1, 0.5], [1, 1]]\n", 11, "masks[0]", "point 2 [-0.1, 0.5] lies outside"),
        ("masks:\n  - [[0, 0], [1, 0]]\n", 11, "masks[0]", "at least 3 points [x, y], found 2"),
        ("masks:\n  - [[0, 0], [0.5, 0.5], [1, 1]]\n", 11, "masks[0]", "has no area"),
        ("masks:\n  - [[0, 0], [1, 0, 2], [1, 1]]\n", 11, "masks[0][1]", "at most 2 items"),
        (
            "zones:\n  - id: queue\n    polygon: [[0, 0], [1, 1], [0, 1], [1, 0]]\n",
            12,
            "zones[0].polygon",
            "intersects itself",
        ),
        ("zones:\n  - id: Queue!\n    polygon: [[0, 0], [1, 0], [1, 1]]\n", 11, "zones[0].id", "must be"),
        (
            "zones:\n  - id: q\n    polygon: [[0, 0], [1, 0], [1, 1]]\n    colour: red\n",
            13,
            "zones[0].colour",
            "unknown key 'colour'; allowed keys here: id, polygon",
        ),
        (
            f"zones:\n  - id: q\n    polygon: {LEFT}\n  - id: q\n    polygon: {RIGHT}\n",
            13,
            "zones[1].id",
            "duplicate zone id 'q'",
        ),
        ("detection: {min_face_size: 8}\n", 10, "detection.min_face_size", "must be >= 12 (found 8)"),
    ],
)
def test_bad_masks_and_zones_are_reported_with_their_line(
    tmp_path: Path, extra: str, line: int, key: str, message: str
) -> None:
    with pytest.raises(RegistryError) as caught:
        load(tmp_path, extra)
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (line, f"stores[0].cameras[0].{key}"), str(problem)
    assert message in problem.message, str(problem)


def test_good_masks_and_zones_load(tmp_path: Path) -> None:
    registry = load(tmp_path, f"masks: [{LEFT}]\nzones:\n  - {{id: left, polygon: {LEFT}}}\n")
    camera = registry.camera("s1", "door")  # type: ignore[attr-defined]
    assert camera.masks == [[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]]
    assert [z.id for z in camera.zones] == ["left"] and camera.detection.motion


def test_a_face_counts_in_the_zone_of_its_centre_first_zone_wins() -> None:
    zones = [Zone(id="left", polygon=LEFT), Zone(id="all", polygon=[(0, 0), (1, 0), (1, 1), (0, 1)])]
    assert zone_at((0.25, 0.5), zones) == "left" and zone_at((0.75, 0.5), zones) == "all"
    assert box_zone((300, 10, 340, 50), (640, 360), zones[:1]) is None  # centre at x = 0.5...
    assert box_zone((100, 10, 140, 50), (640, 360), zones[:1]) == "left"


def face(x: float) -> DetectedFace:
    points = tuple(
        (x + px * 40, 50 + py * 40)
        for px, py in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))
    )
    return DetectedFace((x, 50.0, x + 40, 90.0), 0.99, points)


def test_a_visit_belongs_to_the_zone_of_most_of_its_frames() -> None:
    builder = VisitBuilder()
    zones = ["door", "queue", "queue", None, "door", "queue"]
    for i, zone in enumerate(zones):
        builder.observe(1_000 + 200 * i, [face(100 + 2 * i)], None, zones=[zone])
    (visit,) = builder.flush()
    assert visit.zone == "queue" and visit.faces == 6
    tie = VisitBuilder()
    for i, zone in enumerate(["queue", "door", "door", "queue"]):
        tie.observe(1_000 + 200 * i, [face(100)], None, zones=[zone])
    assert tie.flush()[0].zone == "queue"  # a tie: the zone seen first


def test_the_zone_travels_on_the_wire_and_old_entries_still_decode() -> None:
    record = VisitRecord(1000, 2000, 3, 1, (1500,), "queue")
    assert VisitRecord.from_json(record.to_json()) == record
    assert VisitRecord.from_json({"start": 1, "end": 2, "faces": 1, "readable": 0, "votes": []}).zone is None
    emotion = VisitEmotion(1000, 2000, 3, 0, None, "door")
    assert VisitEmotion.from_json(emotion.to_json()) == emotion
    with pytest.raises(MessageError, match="zone id"):
        VisitRecord.from_json({**record.to_json(), "zone": "Bad Zone"})


@pytest.fixture(scope="module")
def detector_stage_input(shared_data: Path) -> np.ndarray:
    image = cv2.imread(str(shared_data / "images" / "multiface.jpg"))
    assert image is not None
    return image


def detect_with(image: np.ndarray, scene: CameraScene | None) -> FacesMessage:
    analyzer = build_analyzer(AnalysisConfig(), classify=False)
    stage = DetectorStage(analyzer, None if scene is None else (lambda store, camera: scene))
    message = FrameMessage(FrameKey("s1", "door", 1, 0), 1_000, encode_jpeg(image, 95))
    result = stage.handle([Entry("1-0", message.encode())], StageCounters("detector", StreamNames("test:")))
    return FacesMessage.decode(result.outputs[0])


def test_a_masked_face_is_never_detected(detector_stage_input: np.ndarray) -> None:
    height, width = detector_stage_input.shape[:2]
    # the face at x 554-633, y 45-158 of multiface.jpg (6 faces), masked with a margin
    x1, y1, x2, y2 = 540 / width, 30 / height, 650 / width, 175 / height
    scene = CameraScene(masks=(((x1, y1), (x2, y1), (x2, y2), (x1, y2)),))
    unmasked = detect_with(detector_stage_input, None)
    masked = detect_with(detector_stage_input, scene)
    inside = [f for f in unmasked.faces if 554 <= (f.box[0] + f.box[2]) / 2 <= 633]
    assert len(unmasked.faces) == 6 and len(inside) == 1
    assert len(masked.faces) == 5
    assert not [f for f in masked.faces if 540 <= (f.box[0] + f.box[2]) / 2 <= 650]
    # the aligned crops come from the blanked frame: nothing of the masked area leaves the stage
    assert masked.crops.shape[0] == 5


def test_annotate_draws_masks_and_zones() -> None:
    frame = np.full((100, 200, 3), 255, np.uint8)
    scene = CameraScene(
        masks=(((0.0, 0.0), (0.25, 0.0), (0.25, 0.5), (0.0, 0.5)),),
        zones=(Zone(id="queue", polygon=[(0.5, 0.2), (0.9, 0.2), (0.9, 0.9), (0.5, 0.9)]),),
    )
    out = annotate(frame, FrameTracks(0, (), (), ()), ClipVisits(), scene)
    assert tuple(out[40, 20]) == MASK_COLOR_BGR  # inside the mask, away from its label
    assert tuple(out[50, 180]) == ZONE_COLOR_BGR  # on the zone's right edge (x = 0.9 * 200)
    assert tuple(out[60, 150]) == (255, 255, 255)  # inside the zone: left as it was
