"""Accuracy, macro-F1, per-class recall, ECE, confusion matrix and face-size sweep of a FER classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodstream.classifier.calibration import expected_calibration_error
from moodstream.classifier.dataset import read_image, scan_split
from moodstream.classifier.runner import EmotionClassifier
from moodstream.schemas.labels import EMOTIONS


def _shares(counts: np.ndarray) -> dict[str, float]:
    """(7,) counts -> {emotion: share of the total} rounded to 6 places (zeros when the total is 0)."""
    total = max(int(counts.sum()), 1)
    return {e: round(float(c) / total, 6) for e, c in zip(EMOTIONS, counts.tolist(), strict=True)}


@dataclass(frozen=True)
class ConfusionStats:
    """Scores derived from a confusion matrix: ``confusion[i, j]`` counts true EMOTIONS[i] predicted j."""

    confusion: np.ndarray  # (7, 7) int64

    @property
    def samples(self) -> int:
        """Number of images evaluated."""
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy as a fraction."""
        return float(np.trace(self.confusion)) / max(self.samples, 1)

    @property
    def recall(self) -> dict[str, float | None]:
        """Per-class recall; None for a class with no images."""
        totals = self.confusion.sum(axis=1)
        return {
            e: (float(self.confusion[i, i]) / float(totals[i]) if totals[i] else None)
            for i, e in enumerate(EMOTIONS)
        }

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes that have images (a class never predicted scores 0)."""
        true, predicted = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        hits = np.diag(self.confusion).astype(np.float64)
        present = true > 0
        f1 = 2 * hits[present] / (true[present] + predicted[present])
        return float(f1.mean()) if present.any() else 0.0

    @property
    def true_shares(self) -> dict[str, float]:
        """Share of the images in each true class."""
        return _shares(self.confusion.sum(axis=1))

    @property
    def predicted_shares(self) -> dict[str, float]:
        """Share of the images predicted as each class."""
        return _shares(self.confusion.sum(axis=0))

    @property
    def largest_share_gap(self) -> float:
        """Largest |predicted share - true share| over the classes."""
        true, predicted = self.true_shares, self.predicted_shares
        return max(abs(predicted[e] - true[e]) for e in EMOTIONS)


@dataclass(frozen=True)
class FaceSizeResult(ConfusionStats):
    """The same faces shrunk to ``side`` x ``side`` pixels (area) and brought back to the input size."""

    side: int = 48

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: side, accuracy, macro_f1, predicted_shares, largest_share_gap."""
        return {
            "side": self.side,
            "accuracy": round(self.accuracy, 6),
            "macro_f1": round(self.macro_f1, 6),
            "predicted_shares": self.predicted_shares,
            "largest_share_gap": round(self.largest_share_gap, 6),
        }


@dataclass(frozen=True)
class EvaluationResult(ConfusionStats):
    """Evaluation of one model on one split, with its calibration error and optional face-size sweep."""

    model: str = ""
    dataset: str = ""
    ece: float = 0.0
    face_sizes: tuple[FaceSizeResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: model, dataset, samples, accuracy, macro_f1, ece, recall, true/predicted shares,
        labels, confusion (rows = truth), face_sizes (one entry per side, [] without a sweep)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "samples": self.samples,
            "accuracy": round(self.accuracy, 6),
            "macro_f1": round(self.macro_f1, 6),
            "ece": round(self.ece, 6),
            "recall": {k: (None if v is None else round(v, 6)) for k, v in self.recall.items()},
            "true_shares": self.true_shares,
            "predicted_shares": self.predicted_shares,
            "labels": list(EMOTIONS),
            "confusion": self.confusion.tolist(),
            "face_sizes": [f.to_json() for f in self.face_sizes],
        }


def shrink_faces(images: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W[, C]) uint8 faces shrunk to side x side (area) and brought back to H x W (bilinear).

    What a face of ``side`` pixels in a camera frame looks like after it is resized to the model input.
    """
    if not 4 <= side <= 4096:
        raise ValueError(f"face side {side} outside 4..4096 pixels")
    height, width = images.shape[1:3]
    if (side, side) == (width, height):
        return images.copy()
    out = [
        cv2.resize(
            cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA),
            (width, height),
            interpolation=cv2.INTER_LINEAR,
        )
        for image in images
    ]
    return np.stack(out).reshape(images.shape)


def _confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return confusion


def predict_all(
    classifier: EmotionClassifier,
    images: np.ndarray | Sequence[np.ndarray],
    chunk: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N, 7) probabilities of the crops, ``chunk`` at a time; ``progress(done, total)`` after each."""
    parts = []
    for start in range(0, len(images), chunk):
        parts.append(classifier.predict(images[start : start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(images)), len(images))
    return np.concatenate(parts) if parts else np.zeros((0, len(EMOTIONS)), dtype=np.float32)


def evaluate_images(
    classifier: EmotionClassifier,
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray,
    dataset: str,
    face_sizes: Sequence[int] = (),
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Evaluate crops (the model's input size and colour) with (N,) int labels; optional face-size sweep."""
    probabilities = predict_all(classifier, images, progress=progress)
    sweep = []
    for side in face_sizes:
        shrunk = shrink_faces(np.stack(list(images)), side)
        predicted = predict_all(classifier, shrunk, progress=progress).argmax(axis=1)
        sweep.append(FaceSizeResult(confusion=_confusion(labels, predicted), side=side))
    return EvaluationResult(
        confusion=_confusion(labels, probabilities.argmax(axis=1)),
        model=classifier.manifest.name,
        dataset=dataset,
        ece=expected_calibration_error(probabilities, labels),
        face_sizes=tuple(sweep),
    )


def evaluate_folder(
    classifier: EmotionClassifier,
    root: Path,
    progress: Callable[[int, int], None] | None = None,
    face_sizes: Sequence[int] = (),
) -> EvaluationResult:
    """Classify every image of ``root/<emotion>/*`` (resized to the model's input, its colour mode).

    ``face_sizes`` adds one FaceSizeResult per side. ``progress(done, total)`` is called after each
    chunk of each pass. Raises DatasetError for a bad folder.
    """
    split = scan_split(root)
    images = np.stack([read_image(p, classifier.input_size, classifier.color) for p in split.files])
    return evaluate_images(classifier, images, split.labels, str(root), face_sizes, progress)


def confusion_image(result: EvaluationResult, cell: int = 72) -> np.ndarray:
    """Row-normalised confusion matrix drawn as a BGR uint8 image (rows = truth, columns = prediction)."""
    n = len(EMOTIONS)
    margin, title = 90, 40
    image = np.full((title + margin + n * cell, margin + n * cell, 3), 255, dtype=np.uint8)
    totals = np.maximum(result.confusion.sum(axis=1, keepdims=True), 1)
    rates = result.confusion / totals
    font = cv2.FONT_HERSHEY_SIMPLEX
    header = f"{result.model}  acc {result.accuracy:.4f}  n={result.samples}"
    cv2.putText(image, header, (8, 26), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        for j in range(n):
            y, x = title + margin + i * cell, margin + j * cell
            shade = int(255 * (1 - rates[i, j]))
            cv2.rectangle(image, (x, y), (x + cell - 1, y + cell - 1), (255, shade, shade), -1)
            ink = (255, 255, 255) if rates[i, j] > 0.5 else (0, 0, 0)
            cv2.putText(
                image, f"{rates[i, j]:.2f}", (x + 12, y + cell // 2 + 5), font, 0.5, ink, 1, cv2.LINE_AA
            )
        cv2.putText(
            image, EMOTIONS[i][:8], (4, title + margin + i * cell + cell // 2 + 5), font, 0.45, (0, 0, 0), 1
        )
        cv2.putText(
            image, EMOTIONS[i][:8], (margin + i * cell + 4, title + margin - 10), font, 0.45, (0, 0, 0), 1
        )
    return image


def write_confusion_png(result: EvaluationResult, path: Path) -> None:
    """Save ``confusion_image(result)`` as PNG; raises OSError when it cannot be written."""
    if not cv2.imwrite(str(path), confusion_image(result)):
        raise OSError(f"cannot write PNG to {path}")
