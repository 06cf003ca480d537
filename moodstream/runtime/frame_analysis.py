"""The ONE per-frame analysis used everywhere: frame -> faces (+ aligned crops) -> emotions.

The detector worker runs ``FrameAnalyzer.detect``, the classifier worker ``FrameAnalyzer.classify``,
and ``moodstream analyze`` runs both through ``FrameAnalyzer.analyze``; all three are the same code,
so the pipeline's counts equal the offline analyser's for the same frames. Frames travel as JPEG in
the pipeline, so the offline path applies the same JPEG round trip (``jpeg_round_trip``).

Model objects are passed in (created once per process by the wiring), never loaded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodstream.schemas.jpeg import decode_jpeg, encode_jpeg
from moodstream.schemas.messages import ClassifiedFace, DetectedFace, stack_crops

if TYPE_CHECKING:
    from moodstream.detector import Face

Color = Literal["gray", "bgr", "rgb"]


class AnalysisError(ValueError):
    """Crops that do not fit the classifier (size or colour mode), or a frame that cannot be analysed."""


class FaceDetectorLike(Protocol):
    """``detector.FaceDetector``: one list of faces per BGR frame."""

    def detect(self, frames: Sequence[np.ndarray]) -> Sequence[Sequence[Face]]: ...


class AlignFunction(Protocol):
    """``moodstream.detector.align_face``."""

    def __call__(
        self, frame_bgr: np.ndarray, face: Face, size: tuple[int, int], color: Color, margin: float
    ) -> np.ndarray: ...


class EmotionClassifierLike(Protocol):
    """``classifier.EmotionClassifier``: (N, 7) float32 probabilities per crop batch."""

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def color(self) -> Color: ...

    def predict(self, crops: np.ndarray) -> np.ndarray: ...


class CropSpec(BaseModel):
    """How faces are cut out for the classifier: size (w, h), colour mode and margin around the face."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(ge=8, le=1024, description="Crop width in pixels (the classifier's input width).")
    height: int = Field(ge=8, le=1024, description="Crop height in pixels (the classifier's input height).")
    color: Color = Field(description="Colour mode the classifier expects.")
    margin: float = Field(default=0.0, ge=0.0, le=1.0, description="Extra context around the face for align.")


@dataclass(frozen=True)
class FrameFaces:
    """Faces of one frame and their aligned crops, uint8 (N, H, W) gray or (N, H, W, 3) colour."""

    faces: tuple[DetectedFace, ...]
    crops: np.ndarray


def jpeg_round_trip(frame: np.ndarray, quality: int) -> np.ndarray:
    """The frame as the detector worker sees it after ingest's JPEG encoding at ``quality``."""
    decoded = decode_jpeg(encode_jpeg(frame, quality))
    if decoded is None:
        raise AnalysisError(f"frame of shape {frame.shape} did not survive JPEG encoding")
    return decoded


class FrameAnalyzer:
    """Frame -> faces -> emotions with injected models (detector, align function, classifier)."""

    def __init__(
        self,
        detector: FaceDetectorLike | None,
        align: AlignFunction | None,
        classifier: EmotionClassifierLike | None,
        crop: CropSpec,
    ) -> None:
        self.detector = detector
        self.align = align
        self.classifier = classifier
        self.crop = crop

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameFaces]:
        """BGR uint8 (H, W, 3) frames -> one FrameFaces per frame (one batched detector call)."""
        if self.detector is None or self.align is None:
            raise AnalysisError("this analyzer has no face detector (built for classification only)")
        if not frames:
            return []
        return self.align_faces(frames, self.detector.detect(frames))

    def align_faces(self, frames: Sequence[np.ndarray], found: Sequence[Sequence[Face]]) -> list[FrameFaces]:
        """Frames and the faces found in each -> one FrameFaces per frame (records and aligned crops)."""
        if self.align is None:
            raise AnalysisError("this analyzer has no align function (built for classification only)")
        size = (self.crop.width, self.crop.height)
        results: list[FrameFaces] = []
        for frame, faces in zip(frames, found, strict=True):
            crops = [
                self.align(frame, f, size=size, color=self.crop.color, margin=self.crop.margin) for f in faces
            ]
            records = tuple(
                DetectedFace(
                    box=(float(f.box[0]), float(f.box[1]), float(f.box[2]), float(f.box[3])),
                    score=float(f.score),
                    landmarks=tuple((float(x), float(y)) for x, y in np.asarray(f.landmarks).reshape(5, 2)),
                )
                for f in faces
            )
            results.append(FrameFaces(records, stack_crops(crops, size, self.crop.color)))
        return results

    def classify(self, frames: Sequence[FrameFaces]) -> list[tuple[ClassifiedFace, ...]]:
        """Faces of several frames -> their emotions, all crops in ONE classifier batch.

        Returns one tuple per frame (empty for a frame without faces), faces in the same order.
        """
        out: list[tuple[ClassifiedFace, ...]] = []
        for item, rows in zip(frames, self.classify_crops([f.crops for f in frames]), strict=True):
            out.append(
                tuple(
                    ClassifiedFace(box=f.box, score=f.score, probs=tuple(float(p) for p in row))
                    for f, row in zip(item.faces, rows, strict=True)
                )
            )
        return out

    def classify_crops(self, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Several crop arrays (N_i, H, W[, 3]) uint8 -> their (N_i, 7) float32 probabilities, all crops in
        ONE classifier call (the classifier stage sends the vote crops of a whole batch of frames)."""
        if self.classifier is None:
            raise AnalysisError("this analyzer has no emotion classifier (built for detection only)")
        for crops in batches:
            self.check_crops(crops)
        filled = [crops for crops in batches if len(crops)]
        probs = self.classifier.predict(np.concatenate(filled)) if filled else np.zeros((0, 7), np.float32)
        out: list[np.ndarray] = []
        start = 0
        for crops in batches:
            out.append(probs[start : start + len(crops)])
            start += len(crops)
        return out

    def analyze(self, frames: Sequence[np.ndarray]) -> list[tuple[ClassifiedFace, ...]]:
        """Frames -> emotions of their faces: ``classify(detect(frames))``."""
        return self.classify(self.detect(frames))

    def check_crops(self, crops: np.ndarray) -> None:
        """Raise AnalysisError unless crops are (N, H, W[, 3]) for the classifier's size and colour.

        No crop (N == 0, e.g. a frame at which no visit ended) is always acceptable, whatever its shape.
        """
        if self.classifier is None or len(crops) == 0:
            return
        w, h = self.classifier.input_size
        channels = () if self.classifier.color == "gray" else (3,)
        if crops.shape[1:] != (h, w, *channels):
            raise AnalysisError(
                f"crops: expected (N, {h}, {w}{', 3' if channels else ''}) for a {self.classifier.color} "
                f"{w}x{h} classifier, got {crops.shape}"
            )
