"""`align_face`: landmarks land on the FER-2013 template; output shape, dtype and colour per mode."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from moodstream.detector import DetectorError, Face, align_face
from moodstream.detector.align import FER_TEMPLATE, similarity_transform, template_points


def synthetic_face(angle_deg: float, scale: float, centre: tuple[float, float]) -> tuple[np.ndarray, Face]:
    """A 400x300 BGR frame with one coloured dot per landmark, placed by a known similarity transform."""
    frame = np.zeros((300, 400, 3), np.uint8)
    theta = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    points = (FER_TEMPLATE - 0.5) @ rotation.T * scale + np.array(centre)
    for index, (x, y) in enumerate(points):
        cv2.circle(
            frame,
            (round(x), round(y)),
            max(2, round(scale / 25)),
            (40 * index + 60, 255, 255 - 40 * index),
            -1,
        )
    return frame, Face(box=(0.0, 0.0, 1.0, 1.0), score=1.0, landmarks=points.astype(np.float32))


def bright_spot(crop: np.ndarray, around: np.ndarray, radius: int = 5) -> np.ndarray:
    """Intensity-weighted centre of the pixels within ``radius`` of ``around`` in a gray crop."""
    x0, y0 = (around - radius).astype(int)
    window = crop[max(0, y0) : y0 + 2 * radius + 1, max(0, x0) : x0 + 2 * radius + 1].astype(np.float64)
    ys, xs = np.mgrid[0 : window.shape[0], 0 : window.shape[1]]
    total = window.sum()
    return np.array([(xs * window).sum() / total + max(0, x0), (ys * window).sum() / total + max(0, y0)])


@pytest.mark.parametrize(
    ("angle", "scale", "size"), [(0, 120, (48, 48)), (25, 200, (96, 96)), (-15, 60, (64, 80))]
)
def test_landmarks_land_on_template_positions(angle: float, scale: float, size: tuple[int, int]) -> None:
    frame, face = synthetic_face(angle, scale, (200, 150))
    crop = align_face(frame, face, size=size, color="gray")
    for target in template_points(size, margin=0.0):
        found = bright_spot(crop, target, radius=max(3, size[0] // 12))
        assert np.abs(found - target).max() < 1.5, (found, target)


def test_margin_zooms_out_around_the_same_centre() -> None:
    assert np.allclose(template_points((48, 48), 0.0), FER_TEMPLATE * 48)
    tight, wide = template_points((48, 48), 0.0), template_points((48, 48), 0.25)
    eye_distance = lambda p: np.linalg.norm(p[1] - p[0])  # noqa: E731
    assert eye_distance(wide) == pytest.approx(eye_distance(tight) / 1.5)
    assert wide.mean(axis=0) == pytest.approx((tight.mean(axis=0) - 24) / 1.5 + 24)


@pytest.mark.parametrize(("color", "shape"), [("gray", (40, 32)), ("bgr", (40, 32, 3)), ("rgb", (40, 32, 3))])
def test_output_shape_dtype_and_colour(color: str, shape: tuple[int, ...]) -> None:
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[:, :] = (255, 0, 0)  # pure blue in BGR
    _, face = synthetic_face(0, 80, (100, 100))
    crop = align_face(frame, face, size=(32, 40), color=color)  # type: ignore[arg-type]
    assert crop.shape == shape and crop.dtype == np.uint8
    if color == "bgr":
        assert (crop[..., 0] == 255).all() and (crop[..., 2] == 0).all()
    if color == "rgb":
        assert (crop[..., 2] == 255).all() and (crop[..., 0] == 0).all()
    if color == "gray":
        assert (crop == cv2.cvtColor(frame[:1, :1], cv2.COLOR_BGR2GRAY)[0, 0]).all()


def test_grayscale_and_bgra_frames_are_accepted() -> None:
    frame, face = synthetic_face(0, 100, (200, 150))
    expected = align_face(frame, face)
    np.testing.assert_array_equal(align_face(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), face), expected)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert align_face(gray, face, color="bgr").shape == (48, 48, 3)


def test_large_face_is_area_averaged_not_aliased() -> None:
    frame = np.zeros((800, 800, 3), np.uint8)
    frame[::2] = 255  # 1-pixel stripes: a 48 px crop of a 600 px face must average them to mid-gray
    _, face = synthetic_face(0, 600, (400, 400))
    crop = align_face(frame, face, size=(48, 48))
    assert abs(float(crop[8:40, 8:40].mean()) - 127.5) < 10
    assert crop[8:40, 8:40].std() < 15


def test_similarity_transform_recovers_known_transform() -> None:
    src = FER_TEMPLATE * 100
    theta, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    matrix = similarity_transform(src, src @ (scale * rot).T + shift)
    np.testing.assert_allclose(matrix, np.hstack([scale * rot, shift[:, None]]), atol=1e-9)


BAD_ARGUMENTS = [
    ({"size": (0, 48)}, "size"),
    ({"size": (48,)}, "size"),
    ({"size": (48.5, 48)}, "size"),
    ({"color": "hsv"}, "color"),
    ({"margin": -0.1}, "margin"),
    ({"margin": 5.0}, "margin"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_raise_detector_error(kwargs: dict[str, object], message: str) -> None:
    frame, face = synthetic_face(0, 100, (200, 150))
    with pytest.raises(DetectorError, match=message):
        align_face(frame, face, **kwargs)  # type: ignore[arg-type]


def test_bad_landmarks_and_frames_raise_detector_error() -> None:
    frame, face = synthetic_face(0, 100, (200, 150))
    same_point = Face(box=face.box, score=1.0, landmarks=np.ones((5, 2), np.float32))
    with pytest.raises(DetectorError, match="degenerate"):
        align_face(frame, same_point)
    with pytest.raises(DetectorError, match="landmarks"):
        align_face(frame, Face(box=face.box, score=1.0, landmarks=np.zeros((4, 2), np.float32)))
    with pytest.raises(DetectorError, match="dtype"):
        align_face(frame.astype(np.float32), face)


def test_aligns_real_detections(shared_data: Path) -> None:
    from moodstream.detector import DetectorConfig, FaceDetector

    frame = cv2.imread(str(shared_data / "images" / "multiface.jpg"))
    faces = FaceDetector(DetectorConfig(providers=["cpu"])).detect([frame])[0]
    crops = [align_face(frame, face, size=(48, 48), color="gray", margin=0.1) for face in faces]
    assert len(crops) == 6
    for crop in crops:
        assert crop.shape == (48, 48) and crop.std() > 10  # a face, not a flat border
