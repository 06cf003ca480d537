"""`FaceDetector` behaviour a caller relies on: input forms, batching, bad input, model files, config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pydantic
import pytest

from moodstream.detector import DetectorConfig, DetectorError, Face, FaceDetector, ModelFileError
from moodstream.detector.models import DEFAULT_MODEL_DIR, file_sha256
from moodstream.detector.providers import PROVIDERS, resolve_providers


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DetectorConfig(providers=["cpu"], intra_op_threads=1))


@pytest.fixture(scope="module")
def multiface(shared_data: Path) -> np.ndarray:
    return cv2.imread(str(shared_data / "images" / "multiface.jpg"))


def boxes_of(faces: list[Face]) -> np.ndarray:
    return np.array(sorted(f.box for f in faces))


def test_shipped_models_match_manifest_checksums() -> None:
    manifest = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
    assert set(manifest["models"]) == {"pnet", "rnet", "onet"}
    for entry in manifest["models"].values():
        assert file_sha256(DEFAULT_MODEL_DIR / entry["file"]) == entry["sha256"]


def test_finds_faces_with_landmarks_inside_boxes(detector: FaceDetector, multiface: np.ndarray) -> None:
    faces = detector.detect([multiface])[0]
    assert len(faces) == 6
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert ((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)).all()
        assert ((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2)).all()
        assert face.landmarks[0, 0] < face.landmarks[1, 0]  # left eye left of right eye


def test_empty_batch_and_blank_frames(detector: FaceDetector) -> None:
    assert detector.detect([]) == []
    blank = np.zeros((120, 160, 3), np.uint8)
    assert detector.detect([blank, np.full((90, 90, 3), 255, np.uint8)]) == [[], []]


def test_tiny_frame_below_pyramid_gives_no_faces(detector: FaceDetector) -> None:
    assert detector.detect([np.zeros((5, 7, 3), np.uint8)]) == [[]]


def test_grayscale_and_bgra_inputs_match_bgr(detector: FaceDetector, multiface: np.ndarray) -> None:
    gray = cv2.cvtColor(multiface, cv2.COLOR_BGR2GRAY)
    expected_gray = boxes_of(detector.detect([cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)])[0])
    assert len(expected_gray) >= 5
    np.testing.assert_allclose(boxes_of(detector.detect([gray])[0]), expected_gray)
    np.testing.assert_allclose(boxes_of(detector.detect([gray[:, :, None]])[0]), expected_gray)
    bgra = cv2.cvtColor(multiface, cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = 17  # alpha is ignored
    np.testing.assert_allclose(
        boxes_of(detector.detect([bgra])[0]), boxes_of(detector.detect([multiface])[0])
    )


def test_batch_of_mixed_sizes_equals_single_calls(detector: FaceDetector, multiface: np.ndarray) -> None:
    small = cv2.resize(multiface, (600, 315), interpolation=cv2.INTER_AREA)
    flipped = np.ascontiguousarray(multiface[:, ::-1])
    batch = detector.detect([multiface, small, flipped, np.zeros((50, 50, 3), np.uint8)])
    assert len(batch) == 4 and batch[3] == []
    for frame, faces in zip([multiface, small, flipped], batch, strict=False):
        single = detector.detect([frame])[0]
        np.testing.assert_allclose(boxes_of(faces), boxes_of(single), atol=1e-3)
        assert sorted(f.score for f in faces) == pytest.approx(sorted(f.score for f in single), abs=1e-5)


@pytest.mark.parametrize("count", [4, 1], ids=["frames shared out", "one frame, stages shared out"])
def test_frame_workers_give_the_same_faces(detector: FaceDetector, multiface: np.ndarray, count: int) -> None:
    frames = [multiface, np.zeros((40, 40, 3), np.uint8), multiface[:, ::-1], multiface[100:500, 200:900]]
    frames = frames[:count]
    expected = detector.detect(frames)
    assert sum(len(faces) for faces in expected) > 0
    with FaceDetector(DetectorConfig(providers=["cpu"], intra_op_threads=1, frame_workers=3)) as parallel:
        got = parallel.detect(frames)
    assert [len(faces) for faces in got] == [len(faces) for faces in expected]
    for faces, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(boxes_of(faces), boxes_of(want), atol=1e-4)


def test_non_contiguous_frame_is_accepted(detector: FaceDetector, multiface: np.ndarray) -> None:
    view = multiface[:, ::-1]
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(
        boxes_of(detector.detect([view])[0]),
        boxes_of(detector.detect([np.ascontiguousarray(view)])[0]),
    )


def test_max_input_width_maps_boxes_back(multiface: np.ndarray) -> None:
    full = FaceDetector(DetectorConfig(providers=["cpu"], intra_op_threads=1)).detect([multiface])[0]
    reduced = FaceDetector(DetectorConfig(providers=["cpu"], intra_op_threads=1, max_input_width=800))
    faces = reduced.detect([multiface])[0]
    assert len(faces) == len(full)
    for face in faces:
        nearest = min(full, key=lambda f: np.abs(np.array(f.box) - np.array(face.box)).sum())
        assert np.abs(np.array(nearest.box) - np.array(face.box)).max() < 8  # 1.5x downscale
        assert np.abs(nearest.landmarks - face.landmarks).max() < 6


BAD_FRAMES = [
    (np.zeros((0, 10, 3), np.uint8), "empty frame"),
    (np.zeros((10, 0, 3), np.uint8), "empty frame"),
    (np.zeros((10, 10, 0), np.uint8), "empty frame"),
    (np.array([], np.uint8), "shape"),
    (np.zeros((10, 10, 3), np.float32), "dtype float32"),
    (np.zeros((10, 10, 3), np.int64), "dtype int64"),
    (np.zeros((10, 10, 2), np.uint8), "2 channels"),
    (np.zeros((10, 10, 5), np.uint8), "5 channels"),
    (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
    ([[0, 1], [2, 3]], "got list"),
    (None, "got NoneType"),
]


@pytest.mark.parametrize(("frame", "message"), BAD_FRAMES)
def test_bad_frames_raise_detector_error_naming_expectation(
    detector: FaceDetector, frame: object, message: str
) -> None:
    good = np.zeros((30, 30, 3), np.uint8)
    with pytest.raises(DetectorError, match=message) as info:
        detector.detect([good, frame])  # type: ignore[list-item]
    assert "frame 1" in str(info.value)
    assert "expected" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_single_array_instead_of_sequence_is_rejected(detector: FaceDetector) -> None:
    with pytest.raises(DetectorError, match="sequence of frames"):
        detector.detect(np.zeros((30, 30, 3), np.uint8))


def copy_models(tmp_path: Path, with_manifest: bool = True) -> Path:
    for name in ("pnet.onnx", "rnet.onnx", "onet.onnx") + (("manifest.json",) if with_manifest else ()):
        shutil.copy(DEFAULT_MODEL_DIR / name, tmp_path / name)
    return tmp_path


MODEL_FILE_CASES = [
    ("missing", True, "rnet.onnx", "not found"),
    ("garbage", True, "onet.onnx", "does not match the manifest"),
    ("garbage", False, "pnet.onnx", "cannot be loaded"),
    ("truncated", False, "onet.onnx", "cannot be loaded"),
    ("bad-manifest", True, "manifest.json", "not a valid detector manifest"),
]


@pytest.mark.parametrize(("damage", "with_manifest", "file", "message"), MODEL_FILE_CASES)
def test_missing_or_corrupt_model_file_raises_model_file_error_naming_it(
    tmp_path: Path, damage: str, with_manifest: bool, file: str, message: str
) -> None:
    folder = copy_models(tmp_path, with_manifest)
    target = folder / file
    if damage == "missing":
        target.unlink()
    elif damage == "garbage":
        target.write_bytes(b"not an onnx model")
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        target.write_text("{}")
    with pytest.raises(ModelFileError, match=message) as info:
        FaceDetector(DetectorConfig(model_dir=folder))
    assert str(target) in str(info.value)


def test_model_dir_without_manifest_loads(tmp_path: Path, multiface: np.ndarray) -> None:
    detector = FaceDetector(DetectorConfig(model_dir=copy_models(tmp_path, with_manifest=False)))
    assert len(detector.detect([multiface])[0]) == 6


def test_closed_detector_refuses_work() -> None:
    with FaceDetector(DetectorConfig(providers=["cpu"])) as detector:
        pass
    with pytest.raises(DetectorError, match="closed"):
        detector.detect([np.zeros((20, 20, 3), np.uint8)])


BAD_CONFIGS = [
    ({"min_face_size": 5}, "min_face_size"),
    ({"scale_factor": 1.0}, "scale_factor"),
    ({"thresholds": (0.6, 0.7)}, "thresholds"),
    ({"thresholds": (0.6, 0.7, 1.5)}, "thresholds"),
    ({"max_input_width": 0}, "max_input_width"),
    ({"providers": ["gpu-magic"]}, "unknown provider"),
    ({"providers": []}, "non-empty"),
    ({"intra_op_threads": -1}, "intra_op_threads"),
    ({"min_face": 20}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_CONFIGS)
def test_bad_config_is_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        DetectorConfig(**fields)  # type: ignore[arg-type]


def test_config_fields_are_documented() -> None:
    for name, field in DetectorConfig.model_fields.items():
        assert field.description, name


def test_onnxruntime_provider_names_are_accepted() -> None:
    assert DetectorConfig(providers=["CPUExecutionProvider"]).providers == ["cpu"]


def test_provider_resolution() -> None:
    assert resolve_providers("auto")[-1] == "CPUExecutionProvider"
    assert resolve_providers(["cpu"]) == ["CPUExecutionProvider"]
    assert set(PROVIDERS) == {"tensorrt", "cuda", "cpu"}
    with pytest.raises(DetectorError, match="unknown execution provider"):
        resolve_providers(["opencl"])


def test_unavailable_explicit_provider_falls_back_or_fails() -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is installed here")
    assert resolve_providers(["tensorrt", "cpu"]) == ["CPUExecutionProvider"]
    with pytest.raises(DetectorError, match="none of the execution providers"):
        resolve_providers(["tensorrt"])
