"""The shipped INT8 models read real faces like the float models they were quantised from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodstream.classifier import DEFAULT_MODEL, ClassifierConfig, EmotionClassifier, load_manifest
from moodstream.classifier.dataset import load_split
from moodstream.classifier.registry import resolve_manifest_path
from tests.unit.fer_sample import extract_fer_sample


def test_the_default_is_the_int8_model_that_reads_real_camera_faces_best() -> None:
    # vgg-fer-v3-int8 reads PublicTest better (69.1 % vs 66.65 %) but the walking-and-pause clip's
    # neutral faces as sad a third of the time at every crop margin (MODELS.md); vgg-fer-v2-int8 at its
    # margin reads 7 % of them as sad. vgg-fer-v4-int8 (69.46 %) reads that clip neutral too, but the
    # in-the-wild set at its own margin 85.8 % against 91.5 %: the default stays vgg-fer-v2-int8.
    assert DEFAULT_MODEL == "vgg-fer-v2-int8"


@pytest.mark.parametrize("source", ["vgg-fer-v2", "vgg-fer-v3", "vgg-fer-v4"])
def test_int8_model_agrees_with_its_float_source_on_publictest_faces(
    source: str, shared_data: Path, tmp_path: Path
) -> None:
    """140 PublicTest faces: same top class on >= 97 % (measured on all 3,589: 99.5 %), |dp| <= 0.1."""
    images, _ = load_split(extract_fer_sample(shared_data, tmp_path, {"validation": 20}) / "validation")
    faces = list(images)
    int8 = EmotionClassifier(ClassifierConfig(model=f"{source}-int8")).predict(faces)
    float32 = EmotionClassifier(ClassifierConfig(model=source)).predict(faces)
    assert float((int8.argmax(axis=1) == float32.argmax(axis=1)).mean()) >= 0.97
    assert float(np.abs(int8 - float32).max()) <= 0.1
    int8_t = load_manifest(resolve_manifest_path(f"{source}-int8")).calibration
    float_t = load_manifest(resolve_manifest_path(source)).calibration
    assert int8_t is not None and float_t is not None
    assert abs(int8_t.temperature - float_t.temperature) < 0.05  # quantisation barely moved calibration
