"""Accuracy, per-class recall and confusion matrix of a classifier on a FER folder split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodstream.classifier.dataset import read_image, scan_split
from moodstream.classifier.runner import EmotionClassifier
from moodstream.schemas.labels import EMOTIONS


@dataclass(frozen=True)
class EvaluationResult:
    """Evaluation of one model on one split.

    ``confusion[i, j]`` counts images of true class EMOTIONS[i] predicted as EMOTIONS[j].
    """

    model: str
    dataset: str
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

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: model, dataset, samples, accuracy, recall, labels, confusion (rows = truth)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "samples": self.samples,
            "accuracy": round(self.accuracy, 6),
            "recall": {k: (None if v is None else round(v, 6)) for k, v in self.recall.items()},
            "labels": list(EMOTIONS),
            "confusion": self.confusion.tolist(),
        }


def evaluate_folder(
    classifier: EmotionClassifier,
    root: Path,
    chunk: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Classify every image of ``root/<emotion>/*`` (resized to the model's input, its colour mode).

    ``progress(done, total)`` is called after each chunk. Raises DatasetError for a bad folder.
    """
    split = scan_split(root)
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    for start in range(0, len(split), chunk):
        files = split.files[start : start + chunk]
        crops = [read_image(p, classifier.input_size, classifier.color) for p in files]
        predicted = classifier.predict(crops).argmax(axis=1)
        np.add.at(confusion, (split.labels[start : start + chunk], predicted), 1)
        if progress is not None:
            progress(min(start + chunk, len(split)), len(split))
    return EvaluationResult(model=classifier.manifest.name, dataset=str(root), confusion=confusion)


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
