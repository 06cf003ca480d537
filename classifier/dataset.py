"""FER-2013 in the folder layout: ``<split_dir>/<emotion>/*.jpg`` (e.g. the Kaggle msambare copy).

Runtime-light (numpy + OpenCV): used by ``moodstream eval`` and by training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodstream.classifier.errors import DatasetError
from moodstream.schemas.labels import EMOTIONS

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


@dataclass(frozen=True)
class FolderSplit:
    """Image files of one split and their labels (index into EMOTIONS)."""

    root: Path
    files: tuple[Path, ...]
    labels: np.ndarray  # (N,) int64, index into EMOTIONS

    def __len__(self) -> int:
        return len(self.files)


def scan_split(root: Path) -> FolderSplit:
    """List ``root/<emotion>/*`` images.

    Raises DatasetError for a missing folder, unknown class folder names, or no images.

    Class folder names must be EMOTIONS names (case-insensitive); a class may be absent.
    """
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name.lower() not in EMOTIONS]
    if unknown:
        raise DatasetError(
            f"dataset folder {root} has unknown class folder(s) {unknown}; "
            f"expected sub-folders named {list(EMOTIONS)}"
        )
    files: list[Path] = []
    labels: list[int] = []
    for class_dir in class_dirs:
        images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files.extend(images)
        labels.extend([EMOTIONS.index(class_dir.name.lower())] * len(images))
    if not files:
        raise DatasetError(f"dataset folder {root} holds no images in <emotion>/*.jpg sub-folders")
    return FolderSplit(root=root, files=tuple(files), labels=np.asarray(labels, dtype=np.int64))


def read_image(path: Path, size: tuple[int, int], color: str) -> np.ndarray:
    """Read one image as a uint8 crop: (H, W) gray or (H, W, 3) bgr/rgb, resized to ``size`` = (w, h)."""
    flag = cv2.IMREAD_GRAYSCALE if color == "gray" else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise DatasetError(f"cannot decode image {path}")
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.asarray(image, dtype=np.uint8)


def load_split(
    root: Path, size: tuple[int, int] = (48, 48), color: str = "gray"
) -> tuple[np.ndarray, np.ndarray]:
    """Read a whole split into memory: (N, H, W[, 3]) uint8 images and (N,) int64 labels."""
    split = scan_split(root)
    images = np.stack([read_image(p, size, color) for p in split.files])
    return images, split.labels
