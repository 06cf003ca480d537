"""A demo camera for a fresh machine: a short clip made at run time from scikit-image's astronaut photo.

The photo (NASA, public domain) ships inside the scikit-image wheel; nothing is downloaded. The clip
pans and zooms over the face so the detector sees it move, and is written under the data directory
together with a one-store registry that points at it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DEMO_SIZE = (480, 270)
DEMO_FPS = 10
DEMO_SECONDS = 12


def _frame(photo_bgr: np.ndarray, t: float) -> np.ndarray:
    """One 480x270 BGR frame at phase t (period 1): a slow zoom and pan across the photo."""
    w, h = DEMO_SIZE
    zoom = 0.55 + 0.35 * (0.5 - 0.5 * np.cos(2 * np.pi * t))
    side = photo_bgr.shape[0]
    crop_w = int(side * zoom)
    crop_h = int(crop_w * h / w)
    x0 = int((side - crop_w) * (0.5 + 0.4 * np.sin(2 * np.pi * t)))
    y0 = max(0, min(side - crop_h, int(side * 0.05)))
    view = photo_bgr[y0 : y0 + crop_h, x0 : x0 + crop_w]
    return cv2.resize(view, DEMO_SIZE, interpolation=cv2.INTER_AREA)


def write_demo_video(path: Path) -> Path:
    """Write the demo clip (mp4, 480x270, 10 fps, 12 s) to ``path`` unless it exists; return the path.

    Clips with different file names start at a different phase and may be mirrored, so two demo
    cameras do not show the same picture at the same time.
    """
    if path.is_file() and path.stat().st_size > 0:
        return path
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]  # untyped lib
    variant = sum(path.stem.encode()) % 7
    if variant % 2:
        photo = np.ascontiguousarray(photo[:, ::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), DEMO_FPS, DEMO_SIZE)
    frames = DEMO_FPS * DEMO_SECONDS
    for i in range(frames):
        writer.write(_frame(photo, i / frames + variant / 7))
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
