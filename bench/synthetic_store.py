"""A synthetic "mostly empty store" camera for the benchmarks: the demo's drawn store at any size, mild
sensor noise on every frame, and shoppers (scikit-image's astronaut head at random face sizes) who walk
across, stop for a while or cross each other, in view about ``busy_share`` of the time.

``store_clip(seconds, fps, size, busy_share, seed)`` yields (time ms, BGR frame); the same seed gives the
same clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from moodstream.runtime.demo import astronaut_bgr, paste_head, store_background


@dataclass(frozen=True)
class Walker:
    """One shopper: in view from ``start_s`` to ``end_s``; centre moves from (x0, y) to (x1, y), pausing
    in the middle third of the visit when ``pause``."""

    start_s: float
    end_s: float
    face_px: float
    y: float
    x0: float
    x1: float
    pause: bool
    mirror: bool

    def centre(self, t: float) -> tuple[float, float] | None:
        if not self.start_s <= t <= self.end_s:
            return None
        a = (t - self.start_s) / (self.end_s - self.start_s)
        if self.pause:  # walk a third, stand a third, walk a third
            a = 1.5 * a if a < 1 / 3 else 0.5 if a < 2 / 3 else 0.5 + 1.5 * (a - 2 / 3)
        return self.x0 + a * (self.x1 - self.x0), self.y


def walkers(seconds: float, size: tuple[int, int], busy_share: float, seed: int) -> list[Walker]:
    """Shoppers of a clip: busy periods (one or two people) fill about ``busy_share`` of the time."""
    rng = np.random.default_rng(seed)
    width, height = size
    out: list[Walker] = []
    t = float(rng.uniform(2, 6))
    while t < seconds - 4:
        busy = float(rng.uniform(4, 12))
        for _ in range(int(rng.integers(1, 3))):
            start = t + float(rng.uniform(0, busy / 3))
            end = min(seconds, start + float(rng.uniform(busy / 2, busy)))
            face = float(rng.uniform(0.025, 0.09)) * width
            left = bool(rng.integers(0, 2))
            x0, x1 = (-face, width + face) if left else (width + face, -face)
            y = float(rng.uniform(0.2, 0.6)) * height
            out.append(
                Walker(start, end, face, y, x0, x1, bool(rng.integers(0, 2)), bool(rng.integers(0, 2)))
            )
        t += busy + busy * (1 - busy_share) / busy_share * float(rng.uniform(0.6, 1.4))
    return out


def store_clip(
    seconds: float, fps: float, size: tuple[int, int] = (1920, 1080), busy_share: float = 0.3, seed: int = 1
) -> Iterator[tuple[float, np.ndarray]]:
    """(time ms, BGR uint8 frame) of the synthetic store sampled at ``fps`` for ``seconds``."""
    rng = np.random.default_rng(seed + 1000)
    background = store_background(size)
    photo = astronaut_bgr()
    people = walkers(seconds, size, busy_share, seed)
    for index in range(int(seconds * fps)):
        t = index / fps
        frame = background.copy()
        for person in people:
            where = person.centre(t)
            if where is not None:
                paste_head(frame, photo, person.face_px, where[0], where[1], person.mirror)
        noise = rng.normal(0, 2.0, frame.shape[:2]).astype(np.float32)[:, :, None]
        yield t * 1000, np.clip(frame + noise, 0, 255).astype(np.uint8)


def busy_fraction(seconds: float, fps: float, size: tuple[int, int], busy_share: float, seed: int) -> float:
    """Share of the clip's frames with at least one shopper (partly) in view."""
    people = walkers(seconds, size, busy_share, seed)
    frames = int(seconds * fps)
    busy = sum(1 for i in range(frames) if any(p.centre(i / fps) is not None for p in people))
    return busy / frames
