"""Motion gating and resolution by need: ingest's gate sends the detector only to regions that changed,
a still scene costs no detector run after its first frame, a face that walks in is found in the first frame
it appears in (as the full-frame detector finds it), every frame still gives one entry, the regions travel
on the wire, and a camera's smallest face shrinks its frames before detection."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from moodstream.cli.cameras import detection_cost
from moodstream.common.streams import StreamNames
from moodstream.detector import DetectorConfig, FaceDetector
from moodstream.ingest import MotionConfig, MotionGate
from moodstream.runtime.demo import astronaut_bgr, paste_head, store_background
from moodstream.runtime.frame_analysis import CropSpec, FrameAnalyzer
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.scene import CameraScene, SearchStats, detect_in_regions, search_cost
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.worker import Entry
from moodstream.schemas.jpeg import encode_jpeg
from moodstream.schemas.messages import FacesMessage, FrameKey, FrameMessage, MessageError
from moodstream.schemas.registry import Camera, DetectionConfig

SIZE = (960, 540)
STEP_MS = 500  # 2 fps


@pytest.fixture(scope="module")
def detector() -> Iterator[FaceDetector]:
    with FaceDetector(DetectorConfig(intra_op_threads=1)) as found:
        yield found


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return astronaut_bgr()


def scene_frames(photo: np.ndarray, walk_in_at: int, count: int) -> list[np.ndarray]:
    """An empty store with mild noise; from frame ``walk_in_at`` a 60 px face walks in from the left."""
    rng = np.random.default_rng(7)
    background = store_background(SIZE)
    frames = []
    for index in range(count):
        frame = background.copy()
        if index >= walk_in_at:
            paste_head(frame, photo, 60, 60 + 90 * (index - walk_in_at), 200)
        noise = rng.normal(0, 2.0, frame.shape[:2])[:, :, None]
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


def stage_run(
    detector: FaceDetector, frames: list[np.ndarray], gate: MotionGate | None
) -> tuple[list[FacesMessage], SearchStats]:
    """Frames through ingest's gate (when given) and the detector stage, one entry each."""
    analyzer = FrameAnalyzer(detector, _align, None, CropSpec(width=48, height=48, color="gray"))
    stage = DetectorStage(analyzer, lambda store, camera: CameraScene())
    out = []
    for seq, frame in enumerate(frames):
        stamp = 1_000_000 + STEP_MS * seq
        regions = None if gate is None else gate.regions(frame, stamp)
        message = FrameMessage(FrameKey("s", "c", 1, seq), stamp, encode_jpeg(frame, 85), regions)
        result = stage.handle(
            [Entry(f"{seq}-0", message.encode())], StageCounters("detector", StreamNames("test:"))
        )
        out.append(FacesMessage.decode(result.outputs[0]))
    return out, stage.stats


def _align(frame: np.ndarray, face: object, size: tuple[int, int], color: str, margin: float) -> np.ndarray:
    from moodstream.detector import align_face

    return align_face(frame, face, size=size, color=color, margin=margin)  # type: ignore[arg-type]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def test_a_still_scene_costs_no_detector_run_after_the_first_frame(
    detector: FaceDetector, photo: np.ndarray
) -> None:
    frames = scene_frames(photo, walk_in_at=99, count=8)
    out, stats = stage_run(detector, frames, MotionGate())
    assert len(out) == 8 and all(m.faces == () for m in out)  # one entry per frame: frames stay exact
    assert (stats.whole, stats.gated, stats.skipped) == (1, 0, 7)


def test_a_face_that_walks_in_is_found_in_the_first_frame_it_appears_in(
    detector: FaceDetector, photo: np.ndarray
) -> None:
    frames = scene_frames(photo, walk_in_at=3, count=6)
    gated, stats = stage_run(detector, frames, MotionGate())
    full, _ = stage_run(detector, frames, None)
    assert [len(m.faces) for m in full] == [0, 0, 0, 1, 1, 1]
    assert [len(m.faces) for m in gated] == [0, 0, 0, 1, 1, 1]
    for g, f in zip(gated[3:], full[3:], strict=True):
        assert iou(g.faces[0].box, f.faces[0].box) > 0.8, (g.faces[0].box, f.faces[0].box)
    assert stats.skipped == 2 and stats.gated == 3
    assert stats.searched_pixels < 0.5 * stats.frame_pixels


def test_a_face_still_from_the_first_frame_is_found_in_every_frame_until_it_leaves(
    detector: FaceDetector, photo: np.ndarray
) -> None:
    # The face is part of the first background (no motion ever shows it), then vanishes at frame 6.
    rng = np.random.default_rng(5)
    background = store_background(SIZE)
    frames = []
    for index in range(20):
        frame = background.copy()
        if index < 6:
            paste_head(frame, photo, 60, 400, 200)
        noise = rng.normal(0, 2.0, frame.shape[:2])[:, :, None]
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    gated, stats = stage_run(detector, frames, MotionGate(MotionConfig(threshold=200)))  # never motion
    assert [len(m.faces) for m in gated] == [1] * 6 + [0] * 14
    assert gated[0].searched is None and all(m.searched for m in gated[1:6])  # looked for where it was
    # Gone: its place is still looked at for the memory's 4 s (8 frames at 2 fps), then nothing is.
    assert all(m.searched for m in gated[6:14]) and all(m.searched == () for m in gated[14:])
    assert stats.skipped == 6 and stats.searched_pixels < 0.2 * stats.frame_pixels


def test_the_gate_ignores_masked_motion_and_searches_whole_frames_when_it_cannot_compare(
    photo: np.ndarray,
) -> None:
    frames = scene_frames(photo, walk_in_at=2, count=4)
    masked = MotionGate(masks=[((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))])  # the walker's half
    assert [masked.regions(f, STEP_MS * i) for i, f in enumerate(frames)] == [None, (), (), ()]
    gate = MotionGate(MotionConfig(max_gap_ms=1000), full_frame_ms=2000)
    assert gate.regions(frames[0], 0) is None  # first frame
    assert gate.regions(frames[1], 500) == ()
    assert gate.regions(frames[1], 2000) is None  # 1.5 s after the previous frame: too far to compare
    assert gate.regions(frames[1], 1500) is None  # earlier than the previous frame
    assert [gate.regions(frames[1], ms) for ms in (2000, 2500, 3000)] == [(), (), ()]
    assert gate.regions(frames[1], 3500) is None  # 2 s since the last whole frame (at 1500)
    gate.reset()
    assert gate.regions(frames[1], 4000) is None


def test_regions_cover_the_walker_and_little_else(photo: np.ndarray) -> None:
    frames = scene_frames(photo, walk_in_at=1, count=2)
    gate = MotionGate()
    gate.regions(frames[0], 0)
    (region,) = gate.regions(frames[1], STEP_MS) or ()
    x1, y1, x2, y2 = region
    assert x1 <= 60 - 35 and x2 >= 60 + 35 and y1 <= 200 - 45 and y2 >= 200 + 45  # the head, padded
    assert (x2 - x1) * (y2 - y1) < 0.15 * SIZE[0] * SIZE[1]


@pytest.mark.parametrize(
    ("regions", "words"),
    [
        ([[0, 0, 10]], "boxes [x1, y1, x2, y2]"),
        ([[5, 0, 5, 10]], "x1 < x2 and y1 < y2"),
        ([[-1, 0, 5, 10]], "an integer in [0, 65535]"),
        ([[0, 0, 5.5, 10]], "an integer in [0, 65535]"),
        ([[0, 0, 1, 1]] * 257, "at most 256 boxes"),
        ({"x": 1}, "a JSON list of [x1, y1, x2, y2] boxes"),
    ],
)
def test_bad_regions_on_the_wire_are_refused(regions: object, words: str) -> None:
    import json

    fields = FrameMessage(FrameKey("s", "c", 1, 0), 1, b"\xff\xd8jpeg").encode()
    fields[b"regions"] = json.dumps(regions).encode()
    with pytest.raises(MessageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        FrameMessage.decode(fields)


def test_regions_round_trip_and_an_old_entry_means_the_whole_frame() -> None:
    message = FrameMessage(FrameKey("s", "c", 1, 0), 1, b"\xff\xd8jpeg", ((1, 2, 30, 40),))
    assert FrameMessage.decode(message.encode()) == message
    assert (
        FrameMessage.decode(FrameMessage(FrameKey("s", "c", 1, 0), 1, b"\xff\xd8jpeg", ()).encode()).regions
        == ()
    )
    assert (
        FrameMessage.decode(FrameMessage(FrameKey("s", "c", 1, 0), 1, b"\xff\xd8jpeg").encode()).regions
        is None
    )


def test_a_larger_smallest_face_shrinks_the_search_and_still_finds_large_faces(
    detector: FaceDetector, photo: np.ndarray
) -> None:
    frame = store_background(SIZE)
    paste_head(frame, photo, 80, 400, 250)
    (full,) = detect_in_regions(detector, [frame], [None], [1.0])
    stats = SearchStats()
    (shrunk,) = detect_in_regions(detector, [frame], [None], [0.5], stats)  # a camera asking for 40 px
    assert len(full) == len(shrunk) == 1
    assert iou(full[0].box, shrunk[0].box) > 0.75 and stats.frame_pixels == 480 * 270
    cost = search_cost(40, 20)
    assert cost.size == (960, 540) and 0.2 < cost.share < 0.3
    camera = Camera(id="c", source="rtsp://h/x", fps=2, detection=DetectionConfig(min_face_size=40))
    assert "searched at 960x540" in detection_cost(camera) and "25% of the detector work" in detection_cost(
        camera
    )


def test_cameras_that_start_together_search_whole_frames_at_different_times(photo: np.ndarray) -> None:
    from moodstream.ingest import full_frame_phase_ms

    phases = {full_frame_phase_ms("s", f"cam-{i}", 30_000) for i in range(16)}
    assert len(phases) >= 14 and all(0 <= p < 30_000 for p in phases)  # spread over the period
    assert full_frame_phase_ms("s", "cam-1", 30_000) == full_frame_phase_ms("s", "cam-1", 30_000)
    assert full_frame_phase_ms("s", "cam-1", 0) == 0
    frames = scene_frames(photo, walk_in_at=99, count=3)
    gate = MotionGate(full_frame_ms=2000, phase_ms=1500)
    whole = [gate.regions(frames[i % 3], 500 * i) is None for i in range(10)]
    assert whole == [True, True, False, False, False, True, False, False, False, True]  # 0.5 s, then 2 s
