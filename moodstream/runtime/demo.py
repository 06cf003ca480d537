"""A demo camera for a fresh machine: a clip made at run time from scikit-image's astronaut photo.

The photo (NASA, public domain) ships inside the scikit-image wheel; nothing is downloaded. Its head is
cut out and pasted as "shoppers" who come and go in front of a drawn store background: several
appearances per loop, at different sizes (some too small for the quality gate, so they are counted as
visits without an emotion), walking, pausing, crossing. The clip is written under the data directory
together with a one-store registry that points at it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEMO_SIZE = (480, 270)
DEMO_FPS = 10
DEMO_SECONDS = 30

HEAD_PATCH = (150, 30, 300, 210)
"""Region (x1, y1, x2, y2) of the astronaut photo pasted as a head; its face box is about 87 px wide."""
PATCH_FACE_WIDTH = 87.0


@dataclass(frozen=True)
class Appearance:
    """One shopper: face width in px, mirrored or not, and a path of (seconds, centre x, centre y) keys
    (the shopper is in view from the first key to the last, moving linearly between keys)."""

    face_px: float
    mirror: bool
    path: tuple[tuple[float, float, float], ...]

    def position(self, t: float) -> tuple[float, float] | None:
        """Centre of the head at ``t`` seconds into the loop, or None when out of view."""
        keys = self.path
        if not keys[0][0] <= t <= keys[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(keys):
            if t0 <= t <= t1:
                a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
        return keys[-1][1], keys[-1][2]


APPEARANCES: tuple[Appearance, ...] = (
    # a large face walks in from the left, pauses 3 s at the counter, leaves to the right: readable
    Appearance(84, False, ((1.5, 40, 120), (4.5, 200, 125), (7.5, 205, 125), (10.0, 440, 120))),
    # a medium face crosses right to left while the first one pauses: readable
    Appearance(52, True, ((5.0, 440, 90), (12.0, 60, 95))),
    # a small face far away crosses the back: tracked and counted, below the quality gate
    Appearance(24, False, ((13.0, 60, 60), (19.0, 420, 62))),
    # a large face stands at the counter for about 8 s, swaying a little: readable, long dwell
    Appearance(70, True, ((16.0, 300, 140), (20.0, 290, 138), (24.0, 305, 141))),
    # another small face passes, well after the first small one left: unreadable visit
    Appearance(22, True, ((23.0, 430, 55), (27.0, 120, 58))),
)
"""The loop's shoppers; the last leaves 3 s before the loop ends and the first comes 1.5 s after it
starts, so consecutive loops do not merge visits (the tracker's default gap is 3 s)."""


def store_background(size: tuple[int, int]) -> np.ndarray:
    """The demo's drawn store at ``size`` (width, height), BGR uint8 (for synthetic scenes)."""
    return cv2.resize(_background(), size, interpolation=cv2.INTER_LINEAR)


def _background() -> np.ndarray:
    """A plain drawn store: wall gradient, floor, shelves (BGR uint8, DEMO_SIZE)."""
    w, h = DEMO_SIZE
    wall = np.linspace(200, 150, h, dtype=np.float32)[:, None, None] * np.array([1.0, 0.97, 0.92])
    image = np.broadcast_to(wall, (h, w, 3)).astype(np.uint8).copy()
    cv2.rectangle(image, (0, int(h * 0.8)), (w, h), (110, 120, 130), -1)
    for x in (20, 170, 330):
        cv2.rectangle(image, (x, 40), (x + 120, 200), (80, 95, 120), -1)
        for y in (80, 120, 160):
            cv2.line(image, (x, y), (x + 120, y), (60, 70, 90), 3)
    return image


def _head(photo_bgr: np.ndarray, face_px: float, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """The head patch scaled so its face is ``face_px`` wide, and its soft elliptical mask (0..1)."""
    x1, y1, x2, y2 = HEAD_PATCH
    patch = photo_bgr[y1:y2, x1:x2]
    if mirror:
        patch = patch[:, ::-1]
    scale = face_px / PATCH_FACE_WIDTH
    size = (max(4, round(patch.shape[1] * scale)), max(4, round(patch.shape[0] * scale)))
    patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    mask = np.zeros(patch.shape[:2], np.float32)
    cv2.ellipse(mask, (size[0] // 2, size[1] // 2), (size[0] // 2 - 1, size[1] // 2 - 1), 0, 0, 360, 1.0, -1)
    soft: np.ndarray = cv2.GaussianBlur(mask, (0, 0), max(1.0, size[0] / 20))
    return patch, soft[:, :, None]


def _paste(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, cx: float, cy: float) -> None:
    """Blend ``patch`` into ``frame`` centred at (cx, cy), clipped at the frame's edges."""
    ph, pw = patch.shape[:2]
    x0, y0 = round(cx - pw / 2), round(cy - ph / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + pw), min(frame.shape[0], y0 + ph)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sub_p = patch[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    sub_m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (sub_m * sub_p + (1 - sub_m) * region).astype(np.uint8)


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (NASA, public domain; inside the wheel) as BGR uint8."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]  # untyped lib


def paste_head(
    frame: np.ndarray, photo_bgr: np.ndarray, face_px: float, cx: float, cy: float, mirror: bool = False
) -> None:
    """Blend the photo's head, its face ``face_px`` wide, into ``frame`` (BGR uint8, in place) centred at
    (cx, cy): the synthetic shoppers of the demo clip and of the benchmarks."""
    patch, mask = _head(photo_bgr, face_px, mirror)
    _paste(frame, patch, mask, cx, cy)


def demo_frames(photo_bgr: np.ndarray, mirror: bool = False) -> list[np.ndarray]:
    """The loop's frames (DEMO_FPS x DEMO_SECONDS BGR 480x270), mirrored left-right or not."""
    background = _background()
    heads = [_head(photo_bgr, a.face_px, a.mirror) for a in APPEARANCES]
    frames = []
    for i in range(DEMO_FPS * DEMO_SECONDS):
        t = i / DEMO_FPS
        frame = background.copy()
        for appearance, (patch, mask) in zip(APPEARANCES, heads, strict=True):
            where = appearance.position(t)
            if where is not None:
                _paste(frame, patch, mask, *where)
        frames.append(np.ascontiguousarray(frame[:, ::-1]) if mirror else frame)
    return frames


def write_demo_video(path: Path) -> Path:
    """Write the demo clip (mp4, 480x270, 10 fps, 30 s) to ``path`` unless it exists; return the path.

    Clips with some file names are mirrored, so two demo cameras do not show the same picture.
    """
    if path.is_file() and path.stat().st_size > 0:
        return path
    photo = astronaut_bgr()
    variant = sum(path.stem.encode()) % 7
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), DEMO_FPS, DEMO_SIZE)
    for frame in demo_frames(photo, mirror=bool(variant % 2)):
        writer.write(frame)
    writer.release()
    tmp.replace(path)
    return path


DEMO_REGISTRY = """\
# Demo registry written by `moodstream run --demo`: one store, two cameras on a generated clip.
version: 1
pipeline:
  bucket: 10s
stores:
  - id: demo-store
    name: Demo store
    branch: demo
    timezone: UTC
    cameras:
      - id: entrance
        source: {video}
        fps: 2
      - id: counter
        source: {video}
        fps: 1
"""


def ensure_demo_videos(sources: list[str], data_dir: Path) -> list[Path]:
    """Create the missing file sources that lie in ``data_dir/demo`` (the example registry's videos)."""
    demo_dir = (data_dir / "demo").resolve()
    made = []
    for source in sources:
        path = Path(source)
        if (
            path.suffix.lower() in (".mp4", ".avi")
            and not path.exists()
            and path.resolve().parent == demo_dir
        ):
            made.append(write_demo_video(path))
    return made


def write_demo_registry(data_dir: Path) -> Path:
    """Write the demo clip and its stores.yaml under ``data_dir/demo``; return the registry path."""
    video = write_demo_video(data_dir / "demo" / "astronaut.mp4")
    registry = data_dir / "demo" / "stores.yaml"
    registry.write_text(DEMO_REGISTRY.format(video=video.resolve()))
    return registry
