"""Training/validation arrays from either FER-2013 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moodstream.classifier.dataset import load_split
from moodstream.classifier.errors import DatasetError
from moodstream.classifier.training.fer_csv import load_csv_split
from moodstream.schemas.labels import EMOTIONS

Arrays = tuple[np.ndarray, np.ndarray]


def load_fer(data: Path, split: str) -> Arrays:
    """(N, 48, 48) uint8 images and (N,) int64 labels of ``split`` (train / validation).

    ``data`` is a fer2013.csv file or a folder holding ``<split>/<emotion>/*.jpg``.
    """
    if data.is_file() and data.suffix.lower() == ".csv":
        return load_csv_split(data, split)
    if data.is_dir():
        return load_split(data / split, size=(48, 48), color="gray")
    raise DatasetError(
        f"training data {data} is neither a fer2013.csv file nor a folder with {split}/<emotion>/"
    )


def limit_per_class(images: np.ndarray, labels: np.ndarray, limit: int) -> Arrays:
    """Keep the first ``limit`` samples of each class (0 keeps everything)."""
    if limit <= 0:
        return images, labels
    keep = np.concatenate([np.flatnonzero(labels == c)[:limit] for c in range(len(EMOTIONS))])
    keep.sort()
    return images[keep], labels[keep]


def class_weights(labels: np.ndarray, scheme: str) -> np.ndarray:
    """(7,) float32 loss weights, mean 1 over the samples: none, inverse_sqrt or inverse frequency."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    power = {"none": 0.0, "inverse_sqrt": 0.5, "inverse": 1.0}[scheme]
    weights = np.maximum(counts, 1.0) ** -power  # an absent class gets the weight of a class seen once
    weights /= (weights * counts).sum() / counts.sum()
    return weights.astype(np.float32)
