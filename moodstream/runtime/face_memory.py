"""Keep looking where faces were: the detector also searches around each camera's recent faces.

Motion gating (ingest) searches where a frame differs from the camera's background. A face that is in
view and still when the camera starts is part of that first background, and a person who stands still
long enough fades into it: neither moves, so neither would be searched until the next whole-frame
search. ``RecentFaces`` remembers, per camera, the boxes of the faces found in the last ``hold_ms`` of
capture time, and ``detect_remembering`` adds those boxes (padded) to the motion regions of each frame.
A still face found once (by the first frame's whole search) is then found in every frame after it, and a
face that is gone is looked for where it was (so the tracker sees it missing and ends its track).

Within one detector call, frames of a camera are searched together, so a face that an earlier frame of
the same call finds is looked for in the later frames by a second, small call (only those boxes).

Each detector process has its own memory (no shared state): with several detector workers, a camera's
frames are spread over them, and each worker remembers what it found itself; the periodic whole-frame
search (``detection.full_frame_seconds``) bounds what a worker that never saw the face misses.

Boxes are (x1, y1, x2, y2) int tuples in frame pixels, x2 and y2 exclusive.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from moodstream.runtime.frame_analysis import FaceDetectorLike
from moodstream.runtime.scene import Box, SearchStats, box_iou, detect_in_regions, distinct_faces

if TYPE_CHECKING:
    from moodstream.detector import Face

Regions = tuple[Box, ...] | None
"""A frame's search: None for the whole frame, else its boxes (empty: no detector run)."""
Remembered = tuple[Box, Box]
"""A remembered face: (its box when found, the padded box to search for it)."""
MARGIN = 0.25
"""A remembered face counts as looked for when its box, grown by this fraction of its size on every side,
lies inside a searched region."""


@dataclass
class RecentFaces:
    """Per camera, the faces found in the last ``hold_ms`` of capture time, to be searched again.

    ``pad``: the box searched around a remembered face grows by this fraction of the face's size on every
    side (a face moves a little between frames), at least ``min_pad`` pixels.
    """

    hold_ms: int = 4000
    pad: float = 0.75
    min_pad: int = 24
    seen: dict[Hashable, list[tuple[int, Box]]] = field(default_factory=dict)

    def boxes(self, camera: Hashable, captured_ms: int, size: tuple[int, int]) -> list[Remembered]:
        """The faces ``camera`` showed in the ``hold_ms`` up to ``captured_ms`` (not after it: a frame is
        never searched for a later face), each as (face box, padded box to search), clipped to the frame
        ``size`` (width, height); a face whose search box lies inside another's is left out."""
        width, height = size
        out: list[Remembered] = []
        for stamp, (x1, y1, x2, y2) in self.seen.get(camera, ()):
            if not 0 <= captured_ms - stamp <= self.hold_ms:
                continue
            pad_x = max(self.min_pad, round(self.pad * (x2 - x1)))
            pad_y = max(self.min_pad, round(self.pad * (y2 - y1)))
            box = (max(0, x1 - pad_x), max(0, y1 - pad_y), min(width, x2 + pad_x), min(height, y2 + pad_y))
            if box[2] <= box[0] or box[3] <= box[1] or any(_inside(box, b) for _, b in out):
                continue
            out = [(f, b) for f, b in out if not _inside(b, box)] + [((x1, y1, x2, y2), box)]
        return out

    def remember(self, camera: Hashable, captured_ms: int, faces: Sequence[Face]) -> None:
        """Note the faces found in ``camera``'s frame of ``captured_ms``; forget what is past holding."""
        new = [_int_box(face.box) for face in faces]
        kept = [
            (stamp, box)
            for stamp, box in self.seen.get(camera, ())
            if captured_ms - stamp <= self.hold_ms
            and not (stamp <= captured_ms and any(box_iou(box, b) > 0.3 for b in new))
        ]
        kept.extend((captured_ms, box) for box in new)
        if kept:
            self.seen[camera] = kept
        else:
            self.seen.pop(camera, None)

    def holds(self, camera: Hashable, captured_ms: int) -> bool:
        """Whether ``camera`` has a face to look for again at ``captured_ms``."""
        return any(0 <= captured_ms - stamp <= self.hold_ms for stamp, _ in self.seen.get(camera, ()))


def _int_box(box: tuple[float, ...]) -> Box:
    return (int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])), int(np.ceil(box[3])))


def _inside(inner: Box, outer: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def uncovered(regions: Regions, faces: Sequence[Remembered]) -> tuple[Box, ...]:
    """The search boxes of the remembered ``faces`` that a search of ``regions`` does not already look at
    (none when it is the whole frame): a face is looked at when its box, grown by MARGIN, lies inside a
    region."""
    if regions is None:
        return ()
    out = []
    for (x1, y1, x2, y2), search in faces:
        dx, dy = round(MARGIN * (x2 - x1)), round(MARGIN * (y2 - y1))
        grown = (x1 - dx, y1 - dy, x2 + dx, y2 + dy)
        if not any(_inside(grown, r) for r in regions):
            out.append(search)
    return tuple(out)


def detect_remembering(
    detector: FaceDetectorLike,
    frames: Sequence[np.ndarray],
    regions: Sequence[Regions],
    scales: Sequence[float],
    cameras: Sequence[Hashable],
    stamps: Sequence[int],
    memory: RecentFaces,
    stats: SearchStats | None = None,
) -> tuple[list[list[Face]], list[Regions]]:
    """``detect_in_regions`` that also searches around each camera's recent faces (see the module).

    frames: BGR (H, W, 3) uint8; regions, scales: as ``detect_in_regions``; cameras, stamps: each frame's
    camera (any hashable key) and capture time (ms). Returns each frame's faces (frame pixels, highest
    score first) and what was searched in the end (None: the whole frame), and updates ``memory``.
    """
    sizes = [(frame.shape[1], frame.shape[0]) for frame in frames]
    first: list[Regions] = []
    for wanted, camera, stamp, size in zip(regions, cameras, stamps, sizes, strict=True):
        extra = uncovered(wanted, memory.boxes(camera, stamp, size))
        first.append(None if wanted is None else tuple(wanted) + extra)
    faces = detect_in_regions(detector, frames, first, scales, stats)
    second: dict[int, tuple[Box, ...]] = {}
    for index in sorted(range(len(frames)), key=lambda i: stamps[i]):
        extra = uncovered(first[index], memory.boxes(cameras[index], stamps[index], sizes[index]))
        if extra:
            second[index] = extra
        memory.remember(cameras[index], stamps[index], faces[index])
    if second:
        more = _search_again(detector, frames, scales, second, stats)
        for index, found in more.items():
            if stats is not None and first[index] == ():
                stats.skipped, stats.gated = stats.skipped - 1, stats.gated + 1
            faces[index] = distinct_faces(faces[index] + found)
            memory.remember(cameras[index], stamps[index], found)
            first[index] = (first[index] or ()) + second[index]
    return faces, first


def _search_again(
    detector: FaceDetectorLike,
    frames: Sequence[np.ndarray],
    scales: Sequence[float],
    boxes: dict[int, tuple[Box, ...]],
    stats: SearchStats | None,
) -> dict[int, list[Face]]:
    """Faces in the given boxes of some frames (one detector call); only the pixels count in ``stats``."""
    order = sorted(boxes)
    extra = SearchStats()
    found = detect_in_regions(
        detector, [frames[i] for i in order], [boxes[i] for i in order], [scales[i] for i in order], extra
    )
    if stats is not None:
        stats.searched_pixels += extra.searched_pixels
    return dict(zip(order, found, strict=True))
