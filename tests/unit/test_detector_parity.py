"""Parity of `FaceDetector` with the reference MTCNN (facenet-pytorch 2.6.0, same weights and parameters).

Reference output: ../shared/data/mtcnn_reference.json (see ../shared/data/README.md). Criteria (issue 3):
same face count per image and per frame (at most 2 % of a clip's frames may differ, by one face),
every reference box matched with IoU >= 0.9, landmarks within 2 px (images; the clips' reference has none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from moodstream.detector import DetectorConfig, Face, FaceDetector

IMAGES = [
    "multiface.jpg",
    "couple.jpg",
    "angelina_jolie.jpg",
    "kate_siegel.jpg",
    "paul_rudd.jpg",
    "shea_whigham.jpg",
]
CLIPS = [
    "face-demographics-walking.gif",
    "face-demographics-walking-and-pause.gif",
    "head-pose-face-detection-female.gif",
    "head-pose-face-detection-male.gif",
    "facenet-pytorch-video.mp4",
]
MIN_IOU = 0.9
MAX_LANDMARK_PX = 2.0
MAX_SCORE_DIFF = 0.02
MAX_COUNT_DIFF_FRACTION = 0.02
BATCH = 8


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> dict[str, Any]:
    return json.loads((shared_data / "mtcnn_reference.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DetectorConfig(providers=["cpu"], intra_op_threads=2))


def read_clip(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match(reference_boxes: list[list[float]], faces: list[Face]) -> list[tuple[int, int, float]]:
    """Greedy best-IoU matching: (reference index, face index, IoU) per reference box that found a face."""
    pairs = sorted(
        (
            (iou(np.array(r), np.array(f.box)), ri, fi)
            for ri, r in enumerate(reference_boxes)
            for fi, f in enumerate(faces)
        ),
        reverse=True,
    )
    used_r: set[int] = set()
    used_f: set[int] = set()
    matched = []
    for value, ri, fi in pairs:
        if ri in used_r or fi in used_f or value <= 0:
            continue
        used_r.add(ri)
        used_f.add(fi)
        matched.append((ri, fi, value))
    return matched


@pytest.mark.parametrize("name", IMAGES)
def test_image_matches_reference(
    name: str, shared_data: Path, reference: dict[str, Any], detector: FaceDetector
) -> None:
    expected = reference[f"images/{name}"]
    frame = cv2.imread(str(shared_data / "images" / name))
    assert list(frame.shape) == expected["shape"]
    faces = detector.detect([frame])[0]
    assert len(faces) == len(expected["boxes"])
    matched = match(expected["boxes"], faces)
    assert len(matched) == len(expected["boxes"])
    for ri, fi, value in matched:
        assert value >= MIN_IOU, (ri, faces[fi].box, expected["boxes"][ri])
        error = np.abs(faces[fi].landmarks - np.array(expected["landmarks"][ri], dtype=np.float32)).max()
        assert error <= MAX_LANDMARK_PX, (ri, faces[fi].landmarks, expected["landmarks"][ri])
        assert abs(faces[fi].score - expected["probs"][ri]) <= MAX_SCORE_DIFF


@pytest.mark.parametrize("name", CLIPS)
def test_clip_matches_reference(
    name: str, shared_data: Path, reference: dict[str, Any], detector: FaceDetector
) -> None:
    expected = reference[f"video/{name}"]["frames"]
    frames = read_clip(shared_data / "video" / name)
    assert len(frames) == len(expected)
    results: list[list[Face]] = []
    for start in range(0, len(frames), BATCH):
        results.extend(detector.detect(frames[start : start + BATCH]))
    count_diffs = 0
    for index, (faces, ref) in enumerate(zip(results, expected, strict=True)):
        diff = abs(len(faces) - len(ref["boxes"]))
        assert diff <= 1, f"frame {index}: {len(faces)} faces, reference {len(ref['boxes'])}"
        count_diffs += diff
        matched = match(ref["boxes"], faces)
        good = [m for m in matched if m[2] >= MIN_IOU]
        assert len(good) >= len(ref["boxes"]) - diff, f"frame {index}: matched {matched} of {ref['boxes']}"
        for ri, fi, _ in good:
            assert abs(faces[fi].score - ref["probs"][ri]) <= MAX_SCORE_DIFF, (index, ri)
    assert count_diffs <= MAX_COUNT_DIFF_FRACTION * len(frames)
