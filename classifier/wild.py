"""The in-the-wild check set: faces in ../shared/data videos and photos, labelled by eye (labels only).

``classifier/eval/wild_labels.json`` stores, for each labelled face, the file (relative to the shared data
folder), the frame index (``cv2.VideoCapture`` decode order; 0 for photos), the detector's box and 5
landmarks in frame pixels, and the label. No image is stored in the repository: the frames are read
from the shared data folder at evaluation time. The classifier stage does not import the detector, so
the caller passes the aligner (``moodstream.detector.align_face`` in ``moodstream eval``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moodstream.classifier.errors import DatasetError
from moodstream.schemas.labels import EMOTIONS

WILD_LABELS = Path(__file__).resolve().parent / "eval" / "wild_labels.json"
"""The shipped labels of the check set."""
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""../shared/data next to the repository (where the labelled videos and photos are)."""

Emotion = Literal["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

#: (frame_bgr (H, W, 3) uint8, landmarks (5, 2) float64, size (w, h), colour) -> aligned crop.
Aligner = Callable[[np.ndarray, np.ndarray, tuple[int, int], str], np.ndarray]


class WildFace(BaseModel):
    """One labelled face."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, description="Path relative to the shared data folder.")
    frame: int = Field(ge=0, le=1_000_000, description="Frame index in decode order (0 for a photo).")
    box: tuple[float, float, float, float] = Field(description="Detector box (x1, y1, x2, y2), pixels.")
    landmarks: tuple[tuple[float, float], ...] = Field(
        min_length=5, max_length=5, description="Eyes, nose, mouth corners (x, y), pixels."
    )
    label: Emotion = Field(description="The expression a person sees.")


class WildLabels(BaseModel):
    """The check set: how it was made and its faces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, description="What the set is.")
    labelled_by: str = Field(min_length=1, description="Who labelled it, and when.")
    method: str = Field(min_length=1, description="How faces were shown and chosen.")
    faces: tuple[WildFace, ...] = Field(min_length=1, description="The labelled faces.")


def load_wild_labels(path: Path = WILD_LABELS) -> WildLabels:
    """Parse the labels file; raises DatasetError naming the file and the problem."""
    try:
        return WildLabels.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"in-the-wild labels {path} are not readable JSON: {exc}") from exc
    except ValidationError as exc:
        raise DatasetError(f"in-the-wild labels {path} are invalid: {exc.errors()[0]['msg']}") from exc


def missing_files(labels: WildLabels, shared_data: Path) -> list[str]:
    """Files the labels refer to that are not under ``shared_data`` (empty when all are there)."""
    return sorted({f.file for f in labels.faces if not (shared_data / f.file).is_file()})


def _read_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """Frames ``wanted`` of a video (or frame 0 of a photo) as BGR uint8; DatasetError when one is absent."""
    frames: dict[int, np.ndarray] = {}
    if path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            frames[0] = image
    else:
        capture = cv2.VideoCapture(str(path))
        index = 0
        while len(frames) < len(wanted):
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                frames[index] = frame
            index += 1
        capture.release()
    absent = sorted(wanted - set(frames))
    if absent:
        raise DatasetError(f"{path}: cannot read frame(s) {absent[:5]} named by the in-the-wild labels")
    return frames


def wild_files(labels: WildLabels) -> list[str]:
    """The file of each face, in the order ``wild_crops`` returns the crops (grouped by file)."""
    by_file: dict[str, list[str]] = {}
    for face in labels.faces:
        by_file.setdefault(face.file, []).append(face.file)
    return [name for names in by_file.values() for name in names]


def wild_crops(
    labels: WildLabels, shared_data: Path, align: Aligner, size: tuple[int, int], color: str
) -> tuple[list[np.ndarray], np.ndarray]:
    """Aligned crops of every labelled face (``align`` at ``size``/``color``) and (N,) int64 labels.

    Frames are decoded once per file; nothing is written anywhere.
    """
    crops: list[np.ndarray] = []
    targets: list[int] = []
    by_file: dict[str, list[WildFace]] = {}
    for face in labels.faces:
        by_file.setdefault(face.file, []).append(face)
    for name, faces in by_file.items():
        frames = _read_frames(shared_data / name, {f.frame for f in faces})
        for face in faces:
            landmarks = np.asarray(face.landmarks, dtype=np.float64)
            crops.append(align(frames[face.frame], landmarks, size, color))
            targets.append(EMOTIONS.index(face.label))
    return crops, np.asarray(targets, dtype=np.int64)
