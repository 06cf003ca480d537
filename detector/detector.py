"""`FaceDetector`: MTCNN face detection over batches of frames on ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from moodstream.detector.config import DetectorConfig
from moodstream.detector.errors import DetectorError
from moodstream.detector.face import Face
from moodstream.detector.frames import to_bgr
from moodstream.detector.models import MTCNNSessions
from moodstream.detector.providers import resolve_providers
from moodstream.detector.stages import (
    ONET_CROP_RATIO,
    SERIAL,
    Candidates,
    FrameBatch,
    WorkMap,
    finish,
    propose,
    refine,
)

#: Frames of at least this many pixels (about 960x540) run through the three stages one at a time.
SOLO_FRAME_PIXELS = 500_000


class FaceDetector:
    """MTCNN face detector. Loads the three networks once (in the constructor); `detect` does the work.

    Thread-safety: one detector may be shared by threads (ONNX Runtime sessions are thread-safe and
    `detect` keeps no state between calls).
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.providers = resolve_providers(self.config.providers)
        self._sessions: MTCNNSessions | None = MTCNNSessions.load(
            self.config.model_dir, self.providers, self.config.intra_op_threads
        )
        helpers = self.config.frame_workers - 1  # the thread that calls `detect` is a worker too
        self._pool = ThreadPoolExecutor(helpers, thread_name_prefix="detector") if helpers else None

    def close(self) -> None:
        """Release the network sessions and worker threads; `detect` raises afterwards."""
        self._sessions = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each frame: one list per frame (in input order), each list highest score first.

        frames: BGR (H, W, 3), BGRA (H, W, 4) or grayscale (H, W) / (H, W, 1) uint8 arrays; sizes
        may differ. Raises `DetectorError` naming the first bad frame (nothing is detected then).
        """
        if self._sessions is None:
            raise DetectorError("detector is closed; create a new FaceDetector")
        if isinstance(frames, np.ndarray):
            raise DetectorError("frames: got one array; expected a sequence of frames (e.g. [frame])")
        images = [to_bgr(frame, f"frame {index}") for index, frame in enumerate(frames)]
        if not images:
            return []
        images, scales = self._downscale(images)
        return self._to_faces(self._run_shared_out(self._sessions, images), len(images), scales)

    def _run_shared_out(self, sessions: MTCNNSessions, images: list[np.ndarray]) -> Candidates:
        """`_run_stages` on the frames, split into contiguous shares over the workers if there are several.

        A call with fewer frames than workers shares out the work inside the stages instead (pyramid
        levels, R-Net and O-Net runs), so that a single frame uses every worker too.
        """
        if self._pool is None:
            return self._run_stages(sessions, images)
        count = self.config.frame_workers
        workers = WorkMap(self._pool, count)
        if len(images) < count:
            return self._run_stages(sessions, images, workers)
        shares = np.array_split(np.arange(len(images)), count)  # none empty: len(images) >= count
        results = workers(lambda share: self._run_stages(sessions, [images[i] for i in share]), shares)
        for share, found in zip(shares, results, strict=True):
            found.frames = share[found.frames]  # share numbering -> call numbering
        return Candidates.concat(results)

    def _downscale(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
        """Frames wider than max_input_width shrunk to it (area interpolation); per frame (sx, sy) used."""
        limit = self.config.max_input_width
        out, scales = [], []
        for image in images:
            height, width = image.shape[:2]
            if limit is None or width <= limit:
                out.append(image)
                scales.append((1.0, 1.0))
                continue
            new_height = max(1, round(height * limit / width))
            out.append(cv2.resize(image, (limit, new_height), interpolation=cv2.INTER_AREA))
            scales.append((limit / width, new_height / height))
        return out, scales

    def _run_stages(
        self, sessions: MTCNNSessions, images: list[np.ndarray], map_work: WorkMap = SERIAL
    ) -> Candidates:
        """All three stages. Small frames of equal size share P-Net runs and all small frames share
        R-Net/O-Net runs; large frames go through all three stages one at a time (their integral images
        stay in CPU cache, and they have enough candidates to fill network runs on their own)."""
        groups: list[list[int]] = []
        small: list[int] = []
        for index, image in enumerate(images):
            if image.shape[0] * image.shape[1] >= SOLO_FRAME_PIXELS:
                groups.append([index])
            else:
                small.append(index)
        if small:
            groups.append(small)
        parts = []
        for group in groups:
            found = self._run_group(sessions, [images[i] for i in group], map_work)
            found.frames = np.asarray(group, dtype=np.int64)[found.frames]  # group -> call numbering
            parts.append(found)
        return Candidates.concat(parts) if len(parts) > 1 else parts[0]

    def _run_group(self, sessions: MTCNNSessions, images: list[np.ndarray], map_work: WorkMap) -> Candidates:
        """All three stages on frames that share R-Net/O-Net runs; frames of equal size share P-Net runs.

        ``map_work`` runs the pyramid levels and the R-Net/O-Net runs of each stage (maybe in parallel).
        """
        cfg = self.config
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.shape[:2], []).append(index)
        batches: list[FrameBatch] = []
        proposals: list[Candidates] = []
        order: list[int] = []
        for indices in by_size.values():
            batch = FrameBatch.from_frames(np.stack([images[i] for i in indices]), first=len(order))
            order.extend(indices)
            batches.append(batch)
            proposals.append(
                propose(
                    sessions,
                    batch,
                    cfg.min_face_size,
                    cfg.scale_factor,
                    cfg.thresholds[0],
                    cfg.pnet_tile_pixels,
                    map_work,
                )
            )
        proposed = Candidates.concat(proposals)
        found = refine(sessions, batches, proposed, cfg.thresholds[1], cfg.crop_batch, map_work)
        onet_chunk = max(1, cfg.crop_batch // ONET_CROP_RATIO)
        found = finish(sessions, batches, found, cfg.thresholds[2], onet_chunk, map_work)
        found.frames = np.asarray(order, dtype=np.int64)[found.frames]  # batch numbering -> group order
        return found

    @staticmethod
    def _to_faces(found: Candidates, count: int, scales: list[tuple[float, float]]) -> list[list[Face]]:
        """Split candidates into per-frame `Face` lists, mapping coordinates back to the input frames."""
        faces: list[list[Face]] = [[] for _ in range(count)]
        for box, score, frame, points in zip(
            found.boxes, found.scores, found.frames, found.extra, strict=True
        ):
            sx, sy = scales[frame]
            x1, y1, x2, y2 = (float(v) for v in box / np.array([sx, sy, sx, sy], dtype=np.float32))
            landmarks = (points / np.array([sx, sy], dtype=np.float32)).astype(np.float32)
            faces[frame].append(Face(box=(x1, y1, x2, y2), score=float(score), landmarks=landmarks))
        return faces
