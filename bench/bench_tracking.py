"""Benchmark of the visits tracker: visit-count error, ID switches and IDF1 against ground truth, and cost.

1. Synthetic scenes with ground truth. FER-2013 training faces (grey 48x48, upscaled to 40-110 px) are
   pasted on a textured 640x480 background and move along known paths at 10 fps; 5 and 2 fps take every
   2nd and 5th frame. Scenes: "crossing" (two walkers cross, the far one passes behind the near one,
   a third stands), "pause" (a walker stops for 6 s, another passes behind, one approaches the camera),
   "return" (a person leaves and comes back after a minute; another walks behind a pillar, hidden about
   1 s), "group" (six people, two crossing pairs, a fast walker crossing the frame in 2 s). Every frame
   with a face goes through the real `FaceDetector`, then `VisitBuilder`; frames with nobody in view are
   fed as empty detections (the long absence in "return"), not detected. Ground truth: one visit per
   appearance of a person (a 1 s hide behind the pillar stays one visit); for the MOT metrics a face is
   in the ground truth in the frames where less than half of it is covered. Each person's ground-truth
   box is the detector's own box for that face image, measured once on a plain background and scaled.
   Visit-count error = sum over scenes of |visits - true visits| / sum of true visits. MOT metrics
   (motmetrics, IoU >= 0.5) use each detected box's track id (untracked boxes count as misses).

2. The shared clips, counted by eye (looking at every frame of the gifs and at every 4th frame of the
   mp4 at full size, counting people whose face is visible in some frames):
   * face-demographics-walking.gif (35 frames): 2 people walking towards the camera the whole clip.
   * face-demographics-walking-and-pause.gif (41 frames): 3 people standing side by side the whole clip.
   * head-pose-face-detection-female.gif (23 frames): 1 person, head turning from profile to frontal.
   * head-pose-face-detection-male.gif (62 frames): 1 person.
   * facenet-pytorch-video.mp4 (105 frames, 4.2 s): a crowd walking through an arcade; 11 people show
     their face at some point (scarf girl, man in a dark coat leaving right, red-haired young man, boy in
     a blue hoodie, woman in red, grey-haired man, white-haired woman, bald man with glasses, man with
     glasses in a black jacket, woman with a yellow scarf, bald man behind); uncertain by +-2 (small
     background faces, people turning away). The gifs run at 12.5 fps, the mp4 at 25; they are also
     subsampled to about 5 fps. A clip ends with a flush (end of clip), as in `moodstream analyze`.

3. Cost: `FaceTracker.update` and `VisitBuilder.observe` (gate + votes, 48x48 crops) per frame of 10
   moving faces, detector excluded. Best of 3 timed passes of 2,000 frames.

4. A sweep of min_frames and max_gap_seconds on the synthetic scenes at 5 fps (detections reused).

5. If norfair is installed (it is not a dependency), the same detections through norfair's tracker
   (IoU and centre-distance variants; its gaps and confirmations count frames, set to 3 s and 3 frames).

    nice -n 10 python bench/bench_tracking.py   # a few minutes on 2 quiet vCPUs, ~15 beside a training run
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from moodstream.detector import DetectorConfig, FaceDetector, align_face
from moodstream.detector.face import Face
from moodstream.schemas.messages import DetectedFace
from moodstream.visits import FaceTracker, TrackerConfig, VisitBuilder, VisitConfig

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
FER = Path("/tmp/fer2013/train")
SIZE = (640, 480)
BASE_FPS = 10
STREETS = 6
START_MS = 1_700_000_000_000
CLIPS = {
    "face-demographics-walking.gif": 2,
    "face-demographics-walking-and-pause.gif": 3,
    "head-pose-face-detection-female.gif": 1,
    "head-pose-face-detection-male.gif": 1,
    "facenet-pytorch-video.mp4": 11,
}

Path2D = Callable[[float], tuple[float, float, float]]
"""Seconds since the appearance started -> (centre x, centre y, face side) in frame pixels."""


# ---------------------------------------------------------------------------- synthetic scenes


@dataclass(frozen=True)
class Appearance:
    """One visit of a person: from ``start`` to ``end`` seconds, along ``path``."""

    start: float
    end: float
    path: Path2D


@dataclass
class Person:
    """A face image with its appearances; ``depth`` orders drawing (higher = nearer, drawn later)."""

    appearances: list[Appearance]
    depth: int
    image: np.ndarray = field(default_factory=lambda: np.zeros((48, 48), np.uint8))
    box_frac: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)


def line(x0: float, y0: float, x1: float, y1: float, s0: float, s1: float, duration: float) -> Path2D:
    """Straight walk from (x0, y0) to (x1, y1) in ``duration`` s, the face side going from s0 to s1."""

    def at(t: float) -> tuple[float, float, float]:
        f = min(max(t / duration, 0.0), 1.0)
        return (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, s0 + (s1 - s0) * f)

    return at


def legs(*parts: tuple[float, Path2D]) -> Path2D:
    """Chain (duration, path) legs into one path."""

    def at(t: float) -> tuple[float, float, float]:
        for duration, part in parts:
            if t <= duration:
                return part(t)
            t -= duration
        return parts[-1][1](parts[-1][0])

    return at


def scenes() -> dict[str, tuple[list[Person], float, list[tuple[int, int, int, int]]]]:
    """Scene name -> (people, duration s, pillars (x1, y1, x2, y2) drawn over the faces)."""
    crossing = [
        Person([Appearance(0.5, 7.5, line(-20, 200, 660, 215, 84, 84, 7.0))], depth=2),
        Person([Appearance(0.5, 7.5, line(660, 190, -20, 205, 70, 70, 7.0))], depth=1),
        Person([Appearance(0.0, 8.0, line(540, 380, 545, 382, 64, 64, 8.0))], depth=3),
    ]
    pause_path = legs(
        (3.0, line(-20, 240, 300, 240, 76, 76, 3.0)),
        (6.0, line(300, 240, 304, 238, 76, 76, 6.0)),
        (3.0, line(304, 238, 660, 250, 76, 76, 3.0)),
    )
    pause = [
        Person([Appearance(0.0, 12.0, pause_path)], depth=3),
        Person([Appearance(4.0, 12.0, line(660, 150, -20, 140, 50, 50, 8.0))], depth=1),
        Person([Appearance(12.0, 20.0, line(450, 200, 420, 300, 40, 110, 8.0))], depth=2),
    ]
    back = [
        Person(
            [
                Appearance(0.0, 6.0, line(200, 240, -20, 250, 80, 80, 6.0)),
                Appearance(66.0, 72.0, line(-20, 240, 300, 250, 80, 80, 6.0)),
            ],
            depth=2,
        ),
        Person([Appearance(1.0, 9.0, line(80, 150, 600, 150, 60, 60, 8.0))], depth=1),
    ]
    group = [
        Person([Appearance(0.0, 10.0, line(-20, 120, 660, 140, 56, 56, 10.0))], depth=1),
        Person([Appearance(0.0, 10.0, line(660, 130, -20, 110, 60, 60, 10.0))], depth=2),
        Person([Appearance(2.0, 4.0, line(-30, 330, 670, 320, 72, 72, 2.0))], depth=5),
        Person([Appearance(1.0, 13.0, line(120, 330, 130, 320, 90, 96, 12.0))], depth=4),
        Person([Appearance(5.0, 14.0, line(660, 260, 200, 380, 64, 88, 9.0))], depth=6),
        Person([Appearance(3.0, 14.0, line(500, 60, 520, 70, 44, 44, 11.0))], depth=0),
    ]
    named = {
        "crossing": (crossing, 8.0, []),
        "pause": (pause, 20.0, []),
        "return": (back, 72.0, [(300, 90, 360, 210)]),
        "group": (group, 14.0, []),
    }
    return named | {f"street-{seed}": (street(seed), 20.0, []) for seed in range(STREETS)}


def street(seed: int) -> list[Person]:
    """Random passers-by: 4-6 people entering from a side at random heights, sizes (40-110 px) and speeds
    (0.5-4 face sides/s), a third of them pausing 2-6 s on the way."""
    rng = np.random.default_rng(1000 + seed)
    people = []
    for depth in range(int(rng.integers(4, 7))):
        side = float(rng.uniform(40, 110))
        speed = float(rng.uniform(0.5, 4.0)) * side
        y0, y1 = (float(v) for v in rng.uniform(60, 420, 2))
        x0, x1 = (-side / 2, SIZE[0] + side / 2) if rng.random() < 0.5 else (SIZE[0] + side / 2, -side / 2)
        walk = abs(x1 - x0) / speed
        start = float(rng.uniform(0, max(0.5, 19.0 - walk)))
        if rng.random() < 1 / 3:
            pause = float(rng.uniform(2, 6))
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            path = legs(
                (walk / 2, line(x0, y0, xm, ym, side, side, walk / 2)),
                (pause, line(xm, ym, xm, ym, side, side, pause)),
                (walk / 2, line(xm, ym, x1, y1, side, side, walk / 2)),
            )
            walk += pause
        else:
            path = line(x0, y0, x1, y1, side, side, walk)
        people.append(Person([Appearance(start, min(20.0, start + walk), path)], depth=depth))
    return people


def background(seed: int) -> np.ndarray:
    """A textured BGR background: smooth shading, shelves and noise (deterministic)."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    shade = cv2.resize(rng.uniform(70, 190, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    image = np.repeat(shade[:, :, None], 3, axis=2) * np.array([1.0, 0.95, 0.9], np.float32)
    for _ in range(12):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 20))
        colour = [float(c) for c in rng.uniform(40, 220, 3)]
        cv2.rectangle(
            image, (x, y), (x + int(rng.integers(40, 200)), y + int(rng.integers(6, 30))), colour, -1
        )
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def pick_faces(detector: FaceDetector, people: list[Person], seed: int) -> None:
    """Give each person a FER-2013 training face the detector finds, and its box within the patch."""
    rng = np.random.default_rng(seed)
    files = sorted(FER.glob("*/*.jpg"))
    for person in people:
        while True:
            image = cv2.imread(str(files[int(rng.integers(len(files)))]), cv2.IMREAD_GRAYSCALE)
            found = [_detect_alone(detector, image, side) for side in (96, 56, 40)]
            if all(len(f) == 1 and f[0].score > 0.95 for f in found):
                x1, y1, x2, y2 = found[0][0].box
                person.image = image
                person.box_frac = ((x1 - 48) / 96, (y1 - 48) / 96, (x2 - 48) / 96, (y2 - 48) / 96)  # at 96 px
                break


def _detect_alone(detector: FaceDetector, image: np.ndarray, side: int) -> list[Face]:
    """Faces found in a grey face image scaled to ``side`` px, pasted at (48, 48) on a plain canvas."""
    canvas = np.full((side + 96, side + 96, 3), 128, np.uint8)
    canvas[48 : 48 + side, 48 : 48 + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)[
        :, :, None
    ]
    return detector.detect([canvas])[0]


@dataclass
class Rendered:
    """One synthetic frame: image (None = nobody in view), true boxes by visit id, visible or not."""

    image: np.ndarray | None
    truth: dict[int, tuple[tuple[float, float, float, float], bool]]


def render(people: list[Person], pillars: list, t: float, bg: np.ndarray) -> Rendered:
    """Paste every person in view at time t (far ones first), then the pillars; note visibility."""
    frame = bg.copy()
    drawn: list[tuple[int, tuple[float, float, float, float]]] = []  # (visit id, true box), drawing order
    for index in sorted(range(len(people)), key=lambda i: people[i].depth):
        person = people[index]
        for number, app in enumerate(person.appearances):
            if app.start <= t <= app.end:
                box = _paste(frame, person, *app.path(t - app.start))
                if box is not None:
                    drawn.append((index * 10 + number, box))
    for x1, y1, x2, y2 in pillars:
        cv2.rectangle(frame, (x1, y1), (x2, y2), (60, 60, 90), -1)
    covers = [tuple(map(float, p)) for p in pillars]
    truth = {
        key: (box, _covered(box, [b for _, b in drawn[i + 1 :]] + covers) < 0.5)
        for i, (key, box) in enumerate(drawn)
    }
    return Rendered(frame if truth else None, truth)


def _paste(frame: np.ndarray, person: Person, cx: float, cy: float, side: float):
    """Paste the face patch (side px) centred at (cx, cy); returns its true face box or None off-frame."""
    size = max(8, round(side))
    x0, y0 = round(cx - size / 2), round(cy - size / 2)
    h, w = frame.shape[:2]
    fx1, fy1, fx2, fy2 = person.box_frac
    box = (x0 + fx1 * size, y0 + fy1 * size, x0 + fx2 * size, y0 + fy2 * size)
    if box[2] < 0 or box[0] > w or box[3] < 0 or box[1] > h:
        return None
    patch = cv2.resize(person.image, (size, size), interpolation=cv2.INTER_CUBIC)
    sx1, sy1 = max(0, -x0), max(0, -y0)
    sx2, sy2 = min(size, w - x0), min(size, h - y0)
    if sx2 <= sx1 or sy2 <= sy1:
        return None
    frame[y0 + sy1 : y0 + sy2, x0 + sx1 : x0 + sx2] = patch[sy1:sy2, sx1:sx2, None]
    visible_w = (min(box[2], w) - max(box[0], 0)) / (box[2] - box[0])
    return box if visible_w >= 0.5 else None


def _covered(box, others) -> float:
    """Fraction of ``box`` covered by the union (approximated by the sum, capped) of ``others``."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    covered = 0.0
    for o in others:
        iw = max(0.0, min(box[2], o[2]) - max(box[0], o[0]))
        ih = max(0.0, min(box[3], o[3]) - max(box[1], o[1]))
        covered += iw * ih
    return min(1.0, covered / max(area, 1e-9))


# ---------------------------------------------------------------------------- detection and scoring


@dataclass
class Clip:
    """Detected faces per frame with capture times and crops; ground truth when known."""

    times_ms: list[int]
    faces: list[list[DetectedFace]]
    crops: list[np.ndarray]
    truth: list[dict[int, tuple[tuple[float, float, float, float], bool]]] | None
    true_visits: int
    frame_size: tuple[int, int] = SIZE

    def every(self, step: int) -> Clip:
        """The clip subsampled to every ``step``-th frame."""
        pick = slice(None, None, step)
        truth = None if self.truth is None else self.truth[pick]
        return Clip(
            self.times_ms[pick], self.faces[pick], self.crops[pick], truth, self.true_visits, self.frame_size
        )


def to_detected(frame: np.ndarray, faces: list[Face]) -> tuple[list[DetectedFace], np.ndarray]:
    """Detector faces -> message faces and their 48x48 grey aligned crops (N, 48, 48)."""
    detected = [
        DetectedFace(
            tuple(map(float, f.box)), float(f.score), tuple((float(x), float(y)) for x, y in f.landmarks)
        )
        for f in faces
    ]
    crops = [align_face(frame, f, size=(48, 48), color="gray") for f in faces]
    return detected, np.stack(crops) if crops else np.zeros((0, 48, 48), np.uint8)


def detect_scene(detector: FaceDetector, name: str, seed: int) -> Clip:
    """Render and detect one synthetic scene at BASE_FPS."""
    people, duration, pillars = scenes()[name]
    pick_faces(detector, people, seed)
    bg = background(seed)
    clip = Clip([], [], [], [], sum(len(p.appearances) for p in people))
    for index in range(int(duration * BASE_FPS) + 1):
        t = index / BASE_FPS
        rendered = render(people, pillars, t, bg)
        faces, crops = [], np.zeros((0, 48, 48), np.uint8)
        if rendered.image is not None:
            faces, crops = to_detected(rendered.image, detector.detect([rendered.image])[0])
        clip.times_ms.append(START_MS + round(t * 1000))
        clip.faces.append(faces)
        clip.crops.append(crops)
        assert clip.truth is not None
        clip.truth.append(rendered.truth)
    return clip


def detect_video(detector: FaceDetector, path: Path, true_visits: int) -> tuple[Clip, float]:
    """Every frame of a shared clip through the detector; returns the clip and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    clip = Clip([], [], [], None, true_visits)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip.frame_size = (frame.shape[1], frame.shape[0])
        faces, crops = to_detected(frame, detector.detect([frame])[0])
        clip.times_ms.append(START_MS + round(len(clip.times_ms) * 1000 / fps))
        clip.faces.append(faces)
        clip.crops.append(crops)
    capture.release()
    return clip, fps


@dataclass
class Score:
    """Result of tracking one clip."""

    visits: int
    true_visits: int
    readable_visits: int
    idf1: float = float("nan")
    switches: int = 0


def track(clip: Clip, config: VisitConfig) -> Score:
    """Run a VisitBuilder over the clip (flush at the end); score it against the ground truth if any."""
    import motmetrics as mm

    builder, visits, readable = VisitBuilder(config), 0, 0
    accumulator = mm.MOTAccumulator(auto_id=True)
    for index, (ms, faces, crops) in enumerate(zip(clip.times_ms, clip.faces, clip.crops, strict=True)):
        result = builder.observe(ms, faces, crops, clip.frame_size)
        ended = list(result.ended)
        visits += len(ended)
        readable += sum(1 for v in ended if v.votes)
        if clip.truth is not None:
            _accumulate(accumulator, clip.truth[index], faces, result.track_ids)
    ended = builder.flush()
    visits += len(ended)
    readable += sum(1 for v in ended if v.votes)
    score = Score(visits, clip.true_visits, readable)
    if clip.truth is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = mm.metrics.create().compute(accumulator, metrics=["idf1", "num_switches"], name="x")
        score.idf1 = float(summary["idf1"].iloc[0])
        score.switches = int(summary["num_switches"].iloc[0])
    return score


def _accumulate(accumulator, truth, faces, track_ids) -> None:
    visible = [(key, box) for key, (box, seen) in truth.items() if seen]
    hyp = [(tid, face.box) for face, tid in zip(faces, track_ids, strict=True) if tid >= 0]
    distances = np.full((len(visible), len(hyp)), np.nan)
    for i, (_, a) in enumerate(visible):
        for j, (_, b) in enumerate(hyp):
            iou = _iou(a, b)
            if iou >= 0.5:
                distances[i, j] = 1.0 - iou
    accumulator.update([k for k, _ in visible], [t for t, _ in hyp], distances)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------------------- cost


def cost_per_frame(faces: int = 10, frames: int = 2000) -> dict[str, tuple[float, float]]:
    """(wall ms, CPU ms) per frame of ``faces`` faces walking about: tracker alone, and the visit builder.

    CPU time is the process's (all threads); on a shared machine it is the cost, wall time shows waiting.
    """
    rng = np.random.default_rng(0)
    start = rng.uniform(50, 550, (faces, 2))
    speed = rng.uniform(-60, 60, (faces, 2))
    crops = rng.integers(0, 256, (faces, 48, 48), dtype=np.uint8)
    boxes = [
        np.concatenate([start + speed * k / 5 - 30, start + speed * k / 5 + 30], axis=1)
        for k in range(frames)
    ]
    detected = [[_face(b) for b in frame] for frame in boxes]  # decoded messages: not the tracker's cost
    scores = np.full(faces, 0.99)
    out = {}
    for name in ("FaceTracker.update", "VisitBuilder.observe"):
        best = (float("inf"), float("inf"))
        for _ in range(3):
            tracker, builder = FaceTracker(), VisitBuilder()
            wall, cpu = time.perf_counter(), time.process_time()
            for k in range(frames):
                if name == "FaceTracker.update":
                    tracker.update(START_MS + k * 200, boxes[k], scores)
                    tracker.ended(START_MS + k * 200)
                else:
                    builder.observe(START_MS + k * 200, detected[k], crops)
            took = ((time.perf_counter() - wall) / frames * 1000, (time.process_time() - cpu) / frames * 1000)
            best = min(best, took, key=lambda pair: pair[1])
        out[name] = best
    return out


def _face(box: np.ndarray) -> DetectedFace:
    x1, y1, x2, y2 = (float(v) for v in box)
    w = x2 - x1
    marks = (
        (x1 + 0.32 * w, y1 + 0.38 * w),
        (x1 + 0.68 * w, y1 + 0.38 * w),
        (x1 + 0.5 * w, y1 + 0.59 * w),
        (x1 + 0.35 * w, y1 + 0.76 * w),
        (x1 + 0.65 * w, y1 + 0.76 * w),
    )
    return DetectedFace((x1, y1, x2, y2), 0.99, marks)


# ---------------------------------------------------------------------------- report


def report_synthetic(clips: dict[str, Clip], config: VisitConfig) -> None:
    print("\nSynthetic scenes (FER-2013 faces on a background, real detector):")
    print("| fps | scene | true visits | visits | readable | ID switches | IDF1 |")
    print("|---|---|---|---|---|---|---|")
    for fps in (2, 5, 10):
        total_true = total_err = 0
        idf1s = []
        for name, clip in clips.items():
            score = track(clip.every(BASE_FPS // fps), config)
            total_true += score.true_visits
            total_err += abs(score.visits - score.true_visits)
            idf1s.append(score.idf1)
            print(
                f"| {fps} | {name} | {score.true_visits} | {score.visits} | {score.readable_visits} "
                f"| {score.switches} | {score.idf1:.3f} |"
            )
        print(
            f"| {fps} | **all** | {total_true} | count error {100 * total_err / total_true:.1f}% | | "
            f"| mean {np.mean(idf1s):.3f} |"
        )


def report_sweep(clips: dict[str, Clip]) -> None:
    print("\nSweep at 5 fps (count error %, mean IDF1):")
    print("| min_frames \\ max_gap_seconds | 1 | 2 | 3 | 5 | 10 |")
    print("|---|---|---|---|---|---|")
    for min_frames in (1, 2, 3, 5):
        cells = []
        for gap in (1.0, 2.0, 3.0, 5.0, 10.0):
            config = VisitConfig(tracker=TrackerConfig(min_frames=min_frames, max_gap_seconds=gap))
            scores = [track(clip.every(2), config) for clip in clips.values()]
            err = sum(abs(s.visits - s.true_visits) for s in scores) / sum(s.true_visits for s in scores)
            cells.append(f"{100 * err:.0f}% / {np.mean([s.idf1 for s in scores]):.2f}")
        print(f"| {min_frames} | " + " | ".join(cells) + " |")


def track_norfair(clip: Clip, fps: float, distance: str, threshold: float) -> Score:
    """The same clip through norfair's tracker (frame-based; gap and confirmation set to our defaults)."""
    import motmetrics as mm
    from norfair import Detection, Tracker

    tracker = Tracker(
        distance_function=distance,
        distance_threshold=threshold,
        hit_counter_max=round(3 * fps),
        initialization_delay=2,
    )
    accumulator, ids = mm.MOTAccumulator(auto_id=True), set()
    assert clip.truth is not None
    for faces, truth in zip(clip.faces, clip.truth, strict=True):
        boxes = [np.array([[f.box[0], f.box[1]], [f.box[2], f.box[3]]]) for f in faces]
        detections = [
            Detection(points=b, scores=np.array([f.score] * 2)) for b, f in zip(boxes, faces, strict=True)
        ]
        track_ids = [-1] * len(faces)
        for obj in tracker.update(detections=detections):
            for i, detection in enumerate(detections):
                if obj.last_detection is detection and obj.id is not None:
                    track_ids[i] = obj.id
                    ids.add(obj.id)
        _accumulate(accumulator, truth, faces, track_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = mm.metrics.create().compute(accumulator, metrics=["idf1", "num_switches"], name="x")
    idf1, switches = float(summary["idf1"].iloc[0]), int(summary["num_switches"].iloc[0])
    return Score(len(ids), clip.true_visits, 0, idf1, switches)


def report_norfair(clips: dict[str, Clip]) -> None:
    try:
        import norfair  # noqa: F401
    except ImportError:
        print("\nnorfair not installed (pip install norfair): library comparison skipped")
        return
    print("\nnorfair 2.3 on the same detections (count error, mean IDF1, ID switches):")
    print("| distance | 2 fps | 5 fps | 10 fps |")
    print("|---|---|---|---|")
    for distance, threshold in (("iou", 0.8), ("mean_euclidean", 60.0)):
        cells = []
        for fps in (2, 5, 10):
            scores = [
                track_norfair(clip.every(BASE_FPS // fps), fps, distance, threshold)
                for clip in clips.values()
            ]
            err = sum(abs(s.visits - s.true_visits) for s in scores) / sum(s.true_visits for s in scores)
            idf1 = np.mean([s.idf1 for s in scores])
            cells.append(f"{100 * err:.1f}% / {idf1:.3f} / {sum(s.switches for s in scores)}")
        print(f"| {distance} (threshold {threshold:g}) | " + " | ".join(cells) + " |")


def report_videos(detector: FaceDetector, data: Path, config: VisitConfig) -> None:
    print("\nShared clips (true visits counted by eye; see the docstring):")
    print("| clip | fps | frames | faces | visits (by eye) | visits | readable |")
    print("|---|---|---|---|---|---|---|")
    for name, true_visits in CLIPS.items():
        path = data / "video" / name
        if not path.is_file():
            print(f"| {name} | skipped: not found at {path} |")
            continue
        clip, fps = detect_video(detector, path, true_visits)
        for step in (1, max(1, round(fps / 5))):
            sub = clip.every(step)
            score = track(sub, config)
            faces = sum(len(f) for f in sub.faces)
            print(
                f"| {name} | {fps / step:.1f} | {len(sub.times_ms)} | {faces} | {true_visits} "
                f"| {score.visits} | {score.readable_visits} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--no-videos", action="store_true", help="skip the shared clips")
    parser.add_argument("--no-sweep", action="store_true", help="skip the min_frames / max_gap sweep")
    args = parser.parse_args()
    if not FER.is_dir():
        raise SystemExit(
            f"FER-2013 training faces not found at {FER}: unpack {DATA}/fer2013/*.tar.gz to /tmp/fer2013"
        )
    config = VisitConfig()
    print(f"VisitConfig defaults: {config.model_dump()}")
    costs = cost_per_frame()
    print("\nCost per frame of 10 faces (detector excluded):")
    for name, (wall, cpu) in costs.items():
        print(f"  {name}: {cpu:.3f} ms CPU ({wall:.3f} ms wall)")
    began = time.perf_counter()
    with FaceDetector(DetectorConfig(intra_op_threads=1)) as detector:
        clips = {name: detect_scene(detector, name, seed) for seed, name in enumerate(scenes())}
        print(f"\n(synthetic scenes rendered and detected in {time.perf_counter() - began:.0f} s)")
        report_synthetic(clips, config)
        if not args.no_sweep:
            report_sweep(clips)
        report_norfair(clips)
        if not args.no_videos:
            report_videos(detector, args.data, config)


if __name__ == "__main__":
    main()
