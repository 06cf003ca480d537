"""The tracker stage's handler: frames out of order in, one TracksMessage per frame out in capture order,
held entries reported as held until emitted, late frames counted, idle cameras flushed (a fixed clock)."""

from __future__ import annotations

import random

import numpy as np

from moodstream.common.streams import StreamNames
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.tracker import TrackerStage
from moodstream.runtime.visit_tracking import CameraVisits
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import DetectedFace, FacesMessage, FrameKey, TracksMessage
from moodstream.schemas.visit_config import ReorderConfig, VisitConfig

STEP_MS = 200  # 5 fps
REORDER = ReorderConfig(max_frames=32, max_wait_seconds=2.0, idle_flush_seconds=5.0)


def face_at(x: float, side: float = 60.0) -> DetectedFace:
    """A frontal face box of ``side`` px at (x, 50) with plausible landmarks."""
    y = 50.0
    points = ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))
    lm = tuple((x + px * side, y + py * side) for px, py in points)
    return DetectedFace((x, y, x + side, y + side), 0.99, lm)


def frame(seq: int, faces: list[DetectedFace], camera: str = "cam") -> FacesMessage:
    rng = np.random.default_rng(seq)
    crops = rng.integers(0, 255, (len(faces), 48, 48), dtype=np.uint8)
    return FacesMessage(
        FrameKey("s1", camera, 1, seq), 1_000_000 + seq * STEP_MS, (640, 360), tuple(faces), crops
    )


def walking(n: int) -> list[FacesMessage]:
    """One person walking slowly to the right for n frames."""
    return [frame(seq, [face_at(20.0 + 4 * seq)]) for seq in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def entry(message: FacesMessage) -> Entry:
    return Entry(f"{message.key.seq}-0", message.encode())


def run(stage: TrackerStage, messages: list[FacesMessage], counters: StageCounters) -> list[BatchResult]:
    results = []
    for i in range(0, len(messages), 3):
        results.append(stage.handle([entry(m) for m in messages[i : i + 3]], counters))
    return results


def emitted(results: list[BatchResult]) -> list[TracksMessage]:
    return [TracksMessage.decode(f) for r in results for f in r.outputs]


def test_frames_out_of_order_come_out_once_each_in_order_with_the_visit_of_in_order_tracking() -> None:
    clock = Clock()
    stage = TrackerStage(lambda s, c: VisitConfig(), REORDER, clock)
    counters = StageCounters("tracker", StreamNames("t:"))
    messages = walking(20)
    shuffled = messages[:]
    random.Random(3).shuffle(shuffled)
    results = run(stage, shuffled, counters)
    assert stage.holding, "the newest frame is kept until the next one or the idle flush"
    clock.now += REORDER.idle_flush_seconds
    results.append(stage.tick(clock.now, counters))
    out = emitted(results)
    assert [m.key.seq for m in out] == list(range(20))
    assert not stage.holding and not any(m.late for m in out)
    reference = CameraVisits(VisitConfig())
    for m in messages:
        reference.observe(m.captured_ms, m.faces, m.crops)
    expected, _ = reference.flush()
    assert [v for m in out for v in m.visits] == list(expected)
    (visit,) = expected
    assert visit.faces == 20 and visit.dwell_ms == 19 * STEP_MS and len(visit.vote_ms) == 5
    assert out[-1].visits == (visit,) and out[-1].crops.shape == (5, 48, 48)


def test_held_ids_are_reported_held_and_later_released() -> None:
    clock = Clock()
    stage = TrackerStage(lambda s, c: VisitConfig(), REORDER, clock)
    counters = StageCounters("tracker", StreamNames("t:"))
    messages = walking(4)
    first = stage.handle([entry(messages[1]), entry(messages[2])], counters)  # seq 0 missing: both wait
    assert first.outputs == [] and sorted(first.held) == ["1-0", "2-0"]
    second = stage.handle([entry(messages[0])], counters)
    assert [TracksMessage.decode(f).key.seq for f in second.outputs] == [0, 1]
    assert second.held == [] and sorted(second.released) == ["1-0"]  # seq 2 is kept as the newest
    assert stage.holding == {"2-0"}


def test_a_frame_after_the_window_is_emitted_late_and_counted() -> None:
    clock = Clock()
    stage = TrackerStage(lambda s, c: VisitConfig(), REORDER, clock)
    counters = StageCounters("tracker", StreamNames("t:"))
    messages = walking(6)
    results = [stage.handle([entry(m) for m in messages[:2]], counters)]
    results.append(stage.handle([entry(m) for m in messages[3:]], counters))  # seq 2 is missing
    clock.now += REORDER.max_wait_seconds
    results.append(stage.tick(clock.now, counters))  # the window gives up on seq 2
    results.append(stage.handle([entry(messages[2])], counters))
    out = emitted(results)
    late = [m for m in out if m.late]
    assert [m.key.seq for m in late] == [2] and len(late[0].faces) == 1 and late[0].visits == ()
    assert counters._pending[("s1", "cam", "frames_late")] == 1


def test_visits_of_an_idle_camera_end_on_its_last_frame_and_other_cameras_go_on() -> None:
    clock = Clock()
    stage = TrackerStage(lambda s, c: VisitConfig(), REORDER, clock)
    counters = StageCounters("tracker", StreamNames("t:"))
    results = run(stage, walking(5), counters)
    clock.now += REORDER.idle_flush_seconds - 1
    other = [frame(seq, [face_at(100.0)], camera="other") for seq in range(3)]
    results += run(stage, other, counters)
    clock.now += 1
    results.append(stage.tick(clock.now, counters))
    out = emitted(results)
    cam = [m for m in out if m.key.camera_id == "cam"]
    assert [m.key.seq for m in cam] == list(range(5)) and len(cam[-1].visits) == 1
    assert [m.key.seq for m in out if m.key.camera_id == "other"] == [0, 1]  # its newest is still kept


def test_a_copy_of_a_tracked_frame_is_acknowledged_once_and_not_counted_late() -> None:
    clock = Clock()
    stage = TrackerStage(lambda s, c: VisitConfig(), REORDER, clock)
    counters = StageCounters("tracker", StreamNames("t:"))
    messages = walking(4)
    results = [stage.handle([entry(m) for m in messages], counters)]
    copy = Entry("1-9", messages[1].encode())  # seq 1 again, from a detector that redelivered it
    again = stage.handle([copy], counters)
    assert again.outputs == [] and again.held == []  # acknowledged with this batch, nothing written
    clock.now += REORDER.idle_flush_seconds
    results.append(stage.tick(clock.now, counters))
    assert [m.key.seq for m in emitted(results)] == [0, 1, 2, 3]
    assert counters._pending[("s1", "cam", "frames_late")] == 0
