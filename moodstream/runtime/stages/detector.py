"""Detector stage adapter: ``frames`` -> ``faces``.

Per frame: the camera's masks are blanked, the frame is shrunk for the camera's smallest face (resolution
by need, ``detection.min_face_size``), and the detector searches only the motion regions ingest attached
(the whole frame when there are none; no detector run at all when the list is empty), and around the faces
it found in the camera's recent frames (``RecentFaces``: a still face is not lost). Every frame gives
one FacesMessage, so ``frames`` stays exact; it says what was searched (``searched``, frame pixels), so
the tracker does not take a person the detector did not look for as gone."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from moodstream.runtime.face_memory import RecentFaces, Regions, detect_remembering
from moodstream.runtime.frame_analysis import AnalysisError, FrameAnalyzer, FrameFaces
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.scene import (
    CameraScene,
    SearchStats,
    blank_masks,
    detector_scale,
    searched_regions,
)
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.jpeg import MAX_FRAME_PIXELS, decode_jpeg, jpeg_dimensions
from moodstream.schemas.messages import FacesMessage, FrameMessage

SceneSettings = Callable[[str, str], CameraScene]
"""(store id, camera id) -> that camera's scene (masks, zones, detection settings)."""


class DetectorStage:
    """``frames`` -> ``faces``: decode JPEGs, blank each camera's masks, detect faces in all frames of the
    batch at once, align crops (from the blanked frames: nothing of a masked area leaves the stage)."""

    stage = "detector"

    def __init__(
        self, analyzer: FrameAnalyzer, scenes: SceneSettings | None = None, detector_min_face: int = 20
    ) -> None:
        """scenes: each camera's masks and detection settings (None: no mask, whole frames);
        detector_min_face: the detector's own smallest face (``DetectorConfig.min_face_size``)."""
        self.analyzer = analyzer
        self.scenes = scenes
        self.detector_min_face = detector_min_face
        self.stats = SearchStats()
        self.memory = RecentFaces()

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One FacesMessage per frame with a readable JPEG; malformed entries and bad JPEGs are returned
        dead. A frame with nothing to look at (empty regions) is not even decoded: its size is read from
        the JPEG header and it gives an entry without faces."""
        good, dead = decode_all(entries, FrameMessage.decode, FrameMessage.KIND)
        searched: list[tuple[FrameMessage, np.ndarray, float]] = []
        sizes: dict[int, tuple[int, int]] = {}
        scales: dict[int, float] = {}
        skipped: set[int] = set()
        looked_at = {(m.key.store_id, m.key.camera_id) for _, m in good if m.regions != ()}
        for index, (entry, message) in enumerate(good):
            if message.regions == () and not self._may_hold_faces(message, looked_at):
                size = jpeg_dimensions(message.jpeg)
                if size is not None and 0 < size[0] * size[1] <= MAX_FRAME_PIXELS:
                    sizes[index] = size
                    skipped.add(index)
                    self.stats.frames += 1
                    self.stats.skipped += 1
                    continue
            image = decode_jpeg(message.jpeg)
            if image is None:
                dead.append(
                    (entry, f"undecodable JPEG ({len(message.jpeg)} bytes) for {message.key.label()}")
                )
                continue
            scale = 1.0
            if self.scenes is not None:
                scene = self.scenes(message.key.store_id, message.key.camera_id)
                image = blank_masks(image, scene.masks)
                scale = detector_scale(scene.detection.min_face_size, self.detector_min_face)
            sizes[index] = (image.shape[1], image.shape[0])
            scales[index] = scale
            searched.append((message, image, scale))
        found = iter(self._detect(searched))
        outputs = []
        for index, (_, message) in enumerate(good):
            if index not in sizes:
                continue
            faces, wanted = (None, ()) if index in skipped else next(found)
            out = FacesMessage(
                message.key,
                message.captured_ms,
                sizes[index],
                () if faces is None else faces.faces,
                self._no_crops() if faces is None else faces.crops,
                () if faces is None else searched_regions(wanted, scales[index], sizes[index]),
            )
            outputs.append(out.encode())
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "frames_out")
            counters.add(message.key.store_id, message.key.camera_id, "faces", len(out.faces))
        return BatchResult(outputs=outputs, dead=dead)

    def _may_hold_faces(self, message: FrameMessage, looked_at: set[tuple[str, str]]) -> bool:
        """Whether a frame without motion must still be searched: its camera had a face lately, or another
        frame of the camera in this batch is searched (and may find one to look for again)."""
        camera = (message.key.store_id, message.key.camera_id)
        return self.memory.holds(camera, message.captured_ms) or camera in looked_at

    def _detect(
        self, searched: list[tuple[FrameMessage, np.ndarray, float]]
    ) -> list[tuple[FrameFaces, Regions]]:
        """Faces and crops of the frames to search (one detector call, a second for remembered faces),
        each with what was searched (frame pixels before scaling; None: the whole frame)."""
        if not searched:
            return []
        if self.analyzer.detector is None:
            raise AnalysisError("the detector stage needs an analyzer with a face detector")
        images = [image for _, image, _ in searched]
        faces, wanted = detect_remembering(
            self.analyzer.detector,
            images,
            [message.regions for message, _, _ in searched],
            [scale for _, _, scale in searched],
            [(message.key.store_id, message.key.camera_id) for message, _, _ in searched],
            [message.captured_ms for message, _, _ in searched],
            self.memory,
            self.stats,
        )
        return list(zip(self.analyzer.align_faces(images, faces), wanted, strict=True))

    def _no_crops(self) -> np.ndarray:
        """An empty crop array of the analyzer's crop shape (a frame without faces)."""
        crop = self.analyzer.crop
        tail = (crop.height, crop.width) if crop.color == "gray" else (crop.height, crop.width, 3)
        return np.zeros((0, *tail), np.uint8)
