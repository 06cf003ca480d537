"""Not searched is not missed: with motion gating the detector searches only some regions of a frame, and
the tracker must not age (or end) a track the detector did not look for. A person standing still outside
every motion region stays one visit, re-seen at the next whole-frame search; a track the detector did look
for and did not find ages and ends as before. The searched regions travel on the ``faces`` wire."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moodstream.common.streams import StreamNames
from moodstream.ingest import MotionConfig
from moodstream.runtime.clip_analysis import analyze_clip
from moodstream.runtime.demo import astronaut_bgr, paste_head, store_background
from moodstream.runtime.frame_analysis import FrameAnalyzer
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.scene import CameraScene, searched_regions
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.worker import Entry
from moodstream.schemas.jpeg import encode_jpeg
from moodstream.schemas.messages import FacesMessage, FrameKey, FrameMessage, MessageError, decode_message
from moodstream.schemas.registry import DetectionConfig
from moodstream.visits import FaceTracker, VisitBuilder, VisitsError
from tests.unit.visit_scenes import face, sharp_crops

START_MS = 1_700_000_000_000
STEP_MS = 500  # 2 fps
STILL = face(320, 240, 80)  # a person standing still: box (280, 200, 360, 280)
ELSEWHERE = ((500, 0, 640, 200),)  # a motion region away from them (someone walking by)
AROUND = ((250, 170, 400, 320),)  # a region holding their whole face


def _visits(searched_of: list[tuple[bool, tuple[tuple[int, int, int, int], ...] | None]]) -> list[int]:
    """Feed one frame per item (the person detected or not, what the detector searched) at 2 fps; the
    number of faces of each visit, flushed at the end."""
    builder = VisitBuilder()
    out = []
    for index, (seen, searched) in enumerate(searched_of):
        faces = (STILL,) if seen else ()
        regions = None if searched is None else np.array(searched, dtype=np.float64).reshape(-1, 4)
        result = builder.observe(START_MS + STEP_MS * index, faces, sharp_crops(len(faces)), searched=regions)
        out.extend(v.faces for v in result.ended)
    return out + [v.faces for v in builder.flush()]


def test_a_still_person_outside_every_searched_region_stays_one_visit() -> None:
    # Seen 4 frames (whole frames), then 20 s of frames searched elsewhere or not at all, then seen again
    # by a whole-frame search: one visit, of the 6 frames they were seen in.
    frames = [(True, None)] * 4 + [(False, ELSEWHERE), (False, ())] * 20 + [(True, None)] * 2
    assert _visits(frames) == [6]


def test_a_still_person_inside_a_searched_region_and_not_found_ends_as_before() -> None:
    # The same frames, but the regions searched hold the person: not found means gone (max_gap 3 s).
    frames = [(True, None)] * 4 + [(False, AROUND)] * 40 + [(True, None)] * 2
    assert _visits(frames) == [4, 2]


def test_a_whole_frame_search_without_them_ages_the_track() -> None:
    # Not searched for 20 s, then whole frames without them: the track ends max_gap after the first.
    frames = [(True, None)] * 4 + [(False, ())] * 40 + [(False, None)] * 7 + [(True, None)] * 2
    assert _visits(frames) == [4, 2]


def test_a_partly_searched_face_was_not_looked_for() -> None:
    # A region cutting the face in two (the detector saw half of it) does not age the track.
    half = ((250, 170, 320, 320),)
    frames = [(True, None)] * 4 + [(False, half)] * 40 + [(True, None)] * 2
    assert _visits(frames) == [6]


def test_a_tentative_track_not_searched_is_not_dropped() -> None:
    tracker = FaceTracker()
    box, score = np.array([STILL.box]), np.array([0.99])
    (first,) = tracker.update(START_MS, box, score)
    empty = np.zeros((0, 4)), np.zeros(0)
    tracker.update(START_MS + STEP_MS, *empty, searched=np.zeros((0, 4)))  # nothing searched
    assert tracker.open_tracks == 1
    (again,) = tracker.update(START_MS + 2 * STEP_MS, box, score)
    assert again == first
    tracker.update(START_MS + 3 * STEP_MS, *empty)  # a whole frame: confirmed, kept within max_gap
    assert tracker.open_tracks == 1


def test_a_track_predicted_outside_the_frame_ends_even_when_not_searched() -> None:
    tracker = FaceTracker()
    for step, x in enumerate((500.0, 560.0, 620.0)):  # walking right, out of a 640 px frame
        tracker.update(START_MS + STEP_MS * step, np.array([[x, 200, x + 60, 260]]), np.array([0.99]))
    tracker.update(START_MS + 3 * STEP_MS, np.zeros((0, 4)), np.zeros(0), (640, 480), np.zeros((0, 4)))
    assert tracker.open_tracks == 0


@pytest.mark.parametrize(
    ("searched", "words"),
    [
        (np.zeros((2, 3)), r"searched: expected shape \(K, 4\)"),
        (np.array([1.0, 2.0, 3.0, 4.0]), r"searched: expected shape \(K, 4\)"),
        (np.array([[0.0, 0.0, np.nan, 5.0]]), "searched: expected finite numbers"),
        (np.array([[5.0, 0.0, 1.0, 5.0]]), "searched: expected x2 >= x1 and y2 >= y1"),
    ],
)
def test_bad_searched_regions_are_refused(searched: np.ndarray, words: str) -> None:
    with pytest.raises(VisitsError, match=words):
        FaceTracker().update(START_MS, np.zeros((0, 4)), np.zeros(0), searched=searched)


# ---------------------------------------------------------------------------- the wire

KEY = FrameKey("s", "c", 1, 0)


def _faces(searched: tuple[tuple[int, int, int, int], ...] | None) -> FacesMessage:
    return FacesMessage(KEY, 1, (640, 480), (), np.zeros((0, 48, 48), np.uint8), searched)


@pytest.mark.parametrize("searched", [None, (), ((1, 2, 30, 40), (100, 0, 640, 480))])
def test_searched_regions_round_trip_and_an_old_entry_means_the_whole_frame(
    searched: tuple[tuple[int, int, int, int], ...] | None,
) -> None:
    message = _faces(searched)
    fields = message.encode()
    assert (b"searched" in fields) == (searched is not None)  # an entry without it is the old wire
    decoded = decode_message(fields)
    assert isinstance(decoded, FacesMessage) and decoded.searched == searched


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[0, 0, 10]], "field 'searched': expected boxes [x1, y1, x2, y2], got [0, 0, 10]"),
        ([[5, 0, 5, 10]], "field 'searched': expected boxes with x1 < x2 and y1 < y2, got [5, 0, 5, 10]"),
        ([[-1, 0, 5, 10]], "field 'searched': expected an integer in [0, 65535], got -1"),
        ([[0, 0, 5.5, 10]], "field 'searched': expected an integer in [0, 65535], got 5.5"),
        ([[0, 0, 1, 1]] * 257, "field 'searched': expected at most 256 boxes, got 257"),
        ({"x": 1}, "field 'searched': expected a JSON list of [x1, y1, x2, y2] boxes, got {'x': 1}"),
        ("not json", "field 'searched': expected JSON"),
    ],
)
def test_bad_searched_regions_on_the_wire_are_refused(value: object, words: str) -> None:
    fields = _faces(None).encode()
    fields[b"searched"] = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    with pytest.raises(MessageError) as info:
        decode_message(fields)
    assert words in str(info.value)


def test_the_constructor_refuses_bad_searched_regions() -> None:
    with pytest.raises(MessageError, match="field 'searched': expected boxes with x1 < x2"):
        _faces(((10, 0, 5, 10),))


def test_searched_regions_are_in_frame_pixels_at_any_scale() -> None:
    regions = ((101, 51, 303, 207), (0, 0, 10, 10))  # the second too thin to search (at half size)
    assert searched_regions(None, 0.5, (960, 540)) is None
    assert searched_regions((), 1.0, (960, 540)) == ()
    assert searched_regions(regions, 1.0, (960, 540)) == ((101, 51, 303, 207),)
    ((x1, y1, x2, y2),) = searched_regions(regions, 0.5, (960, 540)) or ()
    assert x1 <= 101 and y1 <= 51 and x2 >= 303 and y2 >= 207  # the window searched holds the region
    assert (x1, y1, x2, y2) == (100, 50, 304, 208)


# ---------------------------------------------------------------------------- analyze


@pytest.fixture(scope="module")
def analyzer() -> FrameAnalyzer:
    return build_analyzer(AnalysisConfig())


def _walk_in_and_stand(seconds: float) -> list[tuple[float, np.ndarray]]:
    """A 960x540 empty store with mild noise at 2 fps: a 60 px face walks in for 2 s, then stands still."""
    rng = np.random.default_rng(3)
    background, photo = store_background((960, 540)), astronaut_bgr()
    frames = []
    for index in range(round(seconds * 2)):
        frame = background.copy()
        paste_head(frame, photo, 60, 60 + 90 * min(index, 4), 220)
        noise = rng.normal(0, 2.0, frame.shape[:2])[:, :, None]
        frames.append((index * 500.0, np.clip(frame + noise, 0, 255).astype(np.uint8)))
    return frames


def test_analyze_keeps_a_still_person_one_visit_with_gating_as_without(analyzer: FrameAnalyzer) -> None:
    frames = _walk_in_and_stand(22)  # 2 s walking, 20 s still; whole frames every 10 s when gated
    # A background that takes in a still person within seconds (the default one does within minutes).
    absorbing = MotionConfig(foreground_rate=0.3)
    runs = {}
    for motion in (True, False):
        scene = CameraScene(detection=DetectionConfig(motion=motion, full_frame_seconds=10))
        runs[motion] = analyze_clip(frames, analyzer, scene=scene, batch=8, motion=absorbing)
    gated, full = runs[True], runs[False]
    # Motion stops after 2 s, but the detector keeps looking where the face was: found in every frame,
    # as without gating, at a fraction of the pixels.
    assert [len(f.boxes) for f in gated.frames] == [len(f.boxes) for f in full.frames] == [1] * 44
    assert gated.search.searched_pixels < 0.25 * full.search.searched_pixels
    assert len(full.visits) == len(gated.visits) == 1
    assert gated.visits[0].started_ms == full.visits[0].started_ms == 0
    assert gated.visits[0].ended_ms >= 20_000  # re-seen by the whole-frame search at 20 s: dwell not cut


def test_the_detector_stage_says_what_it_searched_in_frame_pixels(analyzer: FrameAnalyzer) -> None:
    # A camera asking for 40 px faces: frames searched at half size, regions and faces in frame pixels.
    scene = CameraScene(detection=DetectionConfig(min_face_size=40))
    stage = DetectorStage(analyzer, lambda store, camera: scene, detector_min_face=20)
    frame = store_background((960, 540))
    paste_head(frame, astronaut_bgr(), 80, 400, 250)
    jpeg = encode_jpeg(frame, 85)
    out = []
    for seq, regions in enumerate([None, (), ((301, 151, 503, 353), (0, 0, 10, 10))]):
        # One camera per frame: no face remembered from an earlier frame is looked for again.
        message = FrameMessage(FrameKey("s", f"c{seq}", 1, seq), 1000 + 500 * seq, jpeg, regions)
        result = stage.handle([Entry(f"{seq}-0", message.encode())], StageCounters("d", StreamNames("t:")))
        decoded = decode_message(result.outputs[0])
        assert isinstance(decoded, FacesMessage)
        out.append(decoded)
    assert [m.searched for m in out] == [None, (), ((300, 150, 504, 354),)]  # the thin one is not searched
    (found,) = out[2].faces
    x1, y1, x2, y2 = found.box
    assert x1 >= 300 and x2 <= 504 and y1 >= 150 and y2 <= 354  # the face, in the same frame pixels
