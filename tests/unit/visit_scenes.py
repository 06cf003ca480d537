"""Synthetic detector output for the visits tests: faces moving along known paths at a sampled rate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from moodstream.schemas.messages import DetectedFace
from moodstream.visits import EndedVisit, VisitBuilder, VisitConfig

#: Frontal landmarks as fractions of the box (left eye, right eye, nose, mouth left, mouth right).
FRONTAL = ((0.32, 0.38), (0.68, 0.38), (0.5, 0.59), (0.35, 0.76), (0.65, 0.76))

Position = tuple[float, float, float] | None
"""(centre x, centre y, side) of a face at some time, or None where the person is not detected."""


def face(cx: float, cy: float, side: float, score: float = 0.99, turn: float = 0.0) -> DetectedFace:
    """A square face box centred at (cx, cy); ``turn`` shifts the nose sideways by that many eye distances."""
    x1, y1 = cx - side / 2, cy - side / 2
    points = [(x1 + fx * side, y1 + fy * side) for fx, fy in FRONTAL]
    nx, ny = points[2]
    points[2] = (nx + turn * 0.36 * side, ny)
    return DetectedFace((x1, y1, x1 + side, y1 + side), score, tuple(points))


def sharp_crops(count: int, seed: int = 0) -> np.ndarray:
    """(count, 48, 48) uint8 crops of sharp-edged 6 px blocks that pass the sharpness check."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(count, 8, 8), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(6, axis=1).repeat(6, axis=2))


@dataclass(frozen=True)
class Frame:
    """One sampled frame: capture time, its faces and which person each face belongs to."""

    captured_ms: int
    faces: tuple[DetectedFace, ...]
    people: tuple[int, ...]


def scene(
    paths: list[Callable[[float], Position]],
    seconds: float,
    fps: float,
    jitter: float = 1.5,
    seed: int = 0,
    side_scale: float = 1.0,
) -> Iterator[Frame]:
    """Frames of people following ``paths`` (seconds -> position) at ``fps``, with box jitter (px)."""
    rng = np.random.default_rng(seed)
    start_ms = 1_700_000_000_000
    for index in range(int(seconds * fps)):
        t = index / fps
        faces, people = [], []
        for person, path in enumerate(paths):
            where = path(t)
            if where is None:
                continue
            cx, cy, side = where
            dx, dy = rng.normal(0.0, jitter, size=2)
            faces.append(face(cx + dx, cy + dy, side * side_scale))
            people.append(person)
        yield Frame(start_ms + round(t * 1000), tuple(faces), tuple(people))


def run(
    frames: Iterator[Frame], config: VisitConfig | None = None
) -> tuple[list[EndedVisit], list[Frame], list[tuple[int, ...]]]:
    """All visits of the frames (flushed at the end), the frames and each frame's track ids."""
    builder = VisitBuilder(config)
    visits: list[EndedVisit] = []
    seen, ids = [], []
    for frame in frames:
        result = builder.observe(frame.captured_ms, frame.faces, sharp_crops(len(frame.faces)))
        visits.extend(result.ended)
        seen.append(frame)
        ids.append(result.track_ids)
    visits.extend(builder.flush())
    return visits, seen, ids


def walk(x0: float, x1: float, y: float, side: float, t0: float, t1: float) -> Callable[[float], Position]:
    """A person walking in a straight line from x0 to x1 between t0 and t1 s (absent otherwise)."""

    def at(t: float) -> Position:
        if not t0 <= t <= t1:
            return None
        return (x0 + (x1 - x0) * (t - t0) / (t1 - t0), y, side)

    return at


def stand(x: float, y: float, side: float, t0: float, t1: float) -> Callable[[float], Position]:
    """A person standing at (x, y) between t0 and t1 s."""
    return walk(x, x, y, side, t0, t1)
