"""Where eyes, nose and mouth sit in FER-2013 faces and in the pipeline's aligned crops (maintainer tool).

The same instrument measures both: each 48x48 gray image is upscaled 4x (bicubic), given a 64 px
replicated border, and run through moodstream's MTCNN detector; the largest face's 5 landmarks are
mapped back to fractions of the 48x48 crop and averaged. FER-2013 faces are read from a folder split;
the pipeline's crops are ``align_face`` (current ``FER_TEMPLATE``, ``--margin``) of the in-the-wild check
set (classifier/eval/wild_labels.json, frames from ../shared/data). MODELS.md ("Crop framing") records
the figures.

    python scripts/measure_framing.py /tmp/fer2013/train /tmp/fer2013/validation --per-class 150
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from moodstream.classifier.wild import SHARED_DATA, load_wild_labels, wild_crops
from moodstream.detector import DetectorConfig, Face, FaceDetector, align_face
from moodstream.detector.align import FER_TEMPLATE

UPSCALE, BORDER = 4, 64


def landmarks_of(detector: FaceDetector, crops: list[np.ndarray]) -> np.ndarray:
    """(M, 5, 2) landmarks as fractions of the crop, for the M crops where a face was found."""
    found = []
    for crop in crops:
        big = cv2.resize(crop, (48 * UPSCALE, 48 * UPSCALE), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)
        faces = detector.detect([cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)])[0]
        if faces:
            face = max(faces, key=lambda f: f.width)
            found.append((np.asarray(face.landmarks, np.float64) - BORDER) / (48 * UPSCALE))
    return np.array(found).reshape(-1, 5, 2)


def describe(name: str, points: np.ndarray, total: int) -> str:
    """One line: mean landmarks, eye distance and eye-to-mouth height."""
    mean = points.mean(axis=0)
    eyes = np.linalg.norm(points[:, 1] - points[:, 0], axis=1).mean()
    height = (points[:, 3:, 1].mean(axis=1) - points[:, :2, 1].mean(axis=1)).mean()
    marks = " ".join(f"({x:.3f}, {y:.3f})" for x, y in mean)
    return f"{name}: {len(points)}/{total} found; {marks}; eye distance {eyes:.3f}; eyes-mouth {height:.3f}"


def main() -> None:
    """Print one line per FER-2013 split, one for the pipeline's crops, and the template."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("splits", type=Path, nargs="+", help="FER folder splits (<emotion>/*.jpg)")
    parser.add_argument("--per-class", type=int, default=150, help="faces per class and split")
    parser.add_argument("--margin", type=float, default=0.0, help="the pipeline's crop_margin")
    args = parser.parse_args()
    detector = FaceDetector(DetectorConfig(intra_op_threads=1, frame_workers=1, min_face_size=40))
    for split in args.splits:
        files = [f for d in sorted(split.iterdir()) for f in sorted(d.glob("*.jpg"))[: args.per_class]]
        crops = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
        print(describe(f"FER-2013 {split}", landmarks_of(detector, crops), len(crops)))

    def align(frame: np.ndarray, marks: np.ndarray, size: tuple[int, int], color: str) -> np.ndarray:
        face = Face((0.0, 0.0, 1.0, 1.0), 1.0, marks.astype(np.float32))
        return align_face(frame, face, size=size, color="gray", margin=args.margin)

    crops, _ = wild_crops(load_wild_labels(), SHARED_DATA, align, (48, 48), "gray")
    print(describe(f"pipeline crops (margin {args.margin})", landmarks_of(detector, crops), len(crops)))
    print("template: " + " ".join(f"({x:.3f}, {y:.3f})" for x, y in FER_TEMPLATE))


if __name__ == "__main__":
    main()
