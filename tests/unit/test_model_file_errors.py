"""One ``except ModelFileError`` (moodstream.common.errors) catches a bad model file of either stage, while
each stage keeps its own public error name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from moodstream import classifier, detector
from moodstream.common.errors import ModelFileError


def test_unknown_classifier_model_is_a_model_file_error() -> None:
    with pytest.raises(ModelFileError, match="unknown model") as info:
        classifier.EmotionClassifier(classifier.ClassifierConfig(model="no-such-model"))
    assert isinstance(info.value, classifier.ModelFileError)


def test_corrupt_detector_model_is_a_model_file_error(tmp_path: Path) -> None:
    shipped = Path(detector.__file__).resolve().parent / "models"
    folder = shutil.copytree(shipped, tmp_path / "models")
    (folder / "pnet.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelFileError, match=r"pnet\.onnx") as info:
        detector.FaceDetector(detector.DetectorConfig(model_dir=folder))
    assert isinstance(info.value, detector.ModelFileError)
    assert isinstance(info.value, detector.DetectorError)


def test_classifier_checksum_mismatch_is_a_model_file_error(tmp_path: Path) -> None:
    manifest = classifier.resolve_manifest_path("default")
    copied = tmp_path / manifest.name
    shutil.copy(manifest, copied)
    onnx_name = classifier.load_manifest(manifest).file
    (tmp_path / onnx_name).write_bytes(b"replaced")
    with pytest.raises(ModelFileError, match="does not match the sha256"):
        classifier.EmotionClassifier(classifier.ClassifierConfig(model=str(copied)))
