"""FER-2013 in the original Kaggle csv layout: columns ``emotion,pixels,Usage``.

``emotion`` is 0..6 in FER-2013 order (= schemas.labels.EMOTIONS), ``pixels`` 2304 space-separated
gray values (48x48, row-major), ``Usage`` one of Training / PublicTest / PrivateTest.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from moodstream.classifier.errors import DatasetError
from moodstream.schemas.labels import EMOTIONS

CSV_SPLITS = {"train": "Training", "validation": "PublicTest", "test": "PrivateTest"}
"""Our split names -> the csv's Usage values."""

SIDE = 48


def _parse_row(path: Path, line: int, row: dict[str, str]) -> tuple[np.ndarray, int]:
    try:
        label = int(row["emotion"])
        pixels = np.asarray(row["pixels"].split(), dtype=np.int64)
    except (KeyError, ValueError, TypeError) as exc:
        raise DatasetError(f"{path}:{line}: bad emotion/pixels value ({exc})") from exc
    if not 0 <= label < len(EMOTIONS):
        raise DatasetError(f"{path}:{line}: emotion {label} outside 0..{len(EMOTIONS) - 1}")
    if pixels.size != SIDE * SIDE or pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(f"{path}:{line}: expected {SIDE * SIDE} pixel values in 0..255, got {pixels.size}")
    return pixels.astype(np.uint8).reshape(SIDE, SIDE), label


def load_csv_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one split -> (N, 48, 48) uint8 images and (N,) int64 labels in EMOTIONS order.

    ``split`` is train / validation / test. Raises DatasetError for a missing file, missing columns,
    malformed rows or a split with no rows.
    """
    if split not in CSV_SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {list(CSV_SPLITS)}")
    usage = CSV_SPLITS[split]
    images: list[np.ndarray] = []
    labels: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {sorted(missing)}; expected emotion,pixels,Usage"
                )
            for line, row in enumerate(reader, start=2):
                if row.get("Usage") == usage:
                    image, label = _parse_row(path, line, row)
                    images.append(image)
                    labels.append(label)
    except OSError as exc:
        raise DatasetError(f"cannot read FER-2013 csv {path}: {exc}") from exc
    if not images:
        raise DatasetError(f"{path}: no rows with Usage={usage!r} (split {split!r})")
    return np.stack(images), np.asarray(labels, dtype=np.int64)
