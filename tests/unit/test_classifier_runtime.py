"""EmotionClassifier on the shipped models: contract, batching, providers and the bad-input table."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from moodstream.classifier import (
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    ClassifierConfig,
    ClassifierError,
    EmotionClassifier,
    ManifestError,
    ModelFileError,
)
from moodstream.classifier.dataset import read_image
from moodstream.classifier.manifest import Accuracy, load_manifest, with_accuracy, write_manifest
from moodstream.classifier.providers import choose_providers
from moodstream.classifier.registry import MODELS_DIR, resolve_manifest_path
from moodstream.runtime.models import AnalysisConfig, crop_spec_for_model
from moodstream.schemas.labels import EMOTIONS
from tests.unit.fer_sample import extract_fer_sample


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier(ClassifierConfig(model="default"))


def _crops(clf: EmotionClassifier, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    width, height = clf.input_size
    shape = (height, width) if clf.color == "gray" else (height, width, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_every_shipped_model_gives_probabilities_in_emotions_order(name: str) -> None:
    clf = EmotionClassifier(ClassifierConfig(model=name))
    probs = clf.predict(_crops(clf, 5))
    assert probs.shape == (5, len(EMOTIONS))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert clf.manifest.accuracy, f"{name}: measured accuracy missing from its manifest"


def test_default_resolves_to_the_registry_default() -> None:
    assert resolve_manifest_path("default") == MODELS_DIR / SHIPPED_MODELS[DEFAULT_MODEL]


def test_empty_batch_returns_shape_0_7(classifier: EmotionClassifier) -> None:
    result = classifier.predict([])
    assert result.shape == (0, 7)
    assert result.dtype == np.float32


def test_big_batches_are_split_without_changing_results(classifier: EmotionClassifier) -> None:
    crops = _crops(classifier, 23, seed=1)
    small = EmotionClassifier(ClassifierConfig(batch_size=4))
    np.testing.assert_allclose(small.predict(crops), classifier.predict(crops), atol=1e-6)


def test_gray_crop_with_channel_axis_and_float_crop_match_uint8(classifier: EmotionClassifier) -> None:
    crops = _crops(classifier, 3, seed=2)
    expected = classifier.predict(crops)
    np.testing.assert_allclose(classifier.predict([c[:, :, None] for c in crops]), expected, atol=1e-6)
    np.testing.assert_allclose(classifier.predict([c.astype(np.float32) for c in crops]), expected, atol=1e-6)


def test_fer_validation_faces_are_mostly_recognised(shared_data: Path, tmp_path: Path) -> None:
    """The default model beats chance clearly on real FER-2013 PublicTest faces of each class."""
    root = extract_fer_sample(shared_data, tmp_path, {"validation": 20})
    clf = EmotionClassifier()
    correct = total = 0
    for emotion_dir in sorted((root / "validation").iterdir()):
        files = sorted(emotion_dir.glob("*.jpg"))
        crops = [read_image(f, clf.input_size, clf.color) for f in files]
        predicted = clf.predict(crops).argmax(axis=1)
        correct += int((predicted == EMOTIONS.index(emotion_dir.name)).sum())
        total += len(files)
    assert correct / total > 0.4  # chance is 1/7


BAD_CROPS: list[tuple[str, Callable[[int, int], Any], str]] = [
    ("wrong size", lambda h, w: np.zeros((h + 3, w), np.uint8), "has shape"),
    ("wrong channels", lambda h, w: np.zeros((h, w, 2), np.uint8), "has shape"),
    ("4-d crop", lambda h, w: np.zeros((1, h, w, 1), np.uint8), "has shape"),
    ("int64 dtype", lambda h, w: np.zeros((h, w), np.int64), "dtype int64"),
    ("float64 dtype", lambda h, w: np.zeros((h, w), np.float64), "dtype float64"),
    ("NaN", lambda h, w: np.full((h, w), np.nan, np.float32), "NaN"),
    ("inf", lambda h, w: np.full((h, w), np.inf, np.float32), "NaN or infinite"),
    ("float out of range", lambda h, w: np.full((h, w), 300.0, np.float32), "outside [0, 255]"),
    ("not an array", lambda h, w: [[0] * w] * h, "expected a numpy array"),
]


@pytest.mark.parametrize(("case", "make_crop", "message"), BAD_CROPS, ids=[c[0] for c in BAD_CROPS])
def test_bad_crops_raise_classifier_error(
    classifier: EmotionClassifier, case: str, make_crop: Callable[[int, int], Any], message: str
) -> None:
    width, height = classifier.input_size
    good = _crops(classifier, 1)[0]
    with pytest.raises(ClassifierError, match=re.escape(message)) as caught:
        classifier.predict([good, make_crop(height, width)])
    assert "crop 1" in str(caught.value)


def _copy_model(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """Copy the default model to tmp with manifest fields replaced by ``edit``; returns the manifest path."""
    source = resolve_manifest_path("default")
    manifest = json.loads(source.read_text())
    shutil.copy(source.parent / manifest["file"], tmp_path / manifest["file"])
    for key, value in edit.items():
        if key.startswith("input."):
            manifest["input"][key.removeprefix("input.")] = value
        else:
            manifest[key] = value
    target = tmp_path / "model.json"
    target.write_text(json.dumps(manifest))
    return target


BAD_MANIFESTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "input size differs from model",
        {"input.width": 40, "input.height": 40},
        ManifestError,
        "input is shaped",
    ),
    ("colour differs from model", {"input.color": "bgr"}, ManifestError, "input is shaped"),
    ("layout differs from model", {"input.layout": "NHWC"}, ManifestError, "input is shaped"),
    ("wrong input name", {"input.name": "image"}, ManifestError, "names input 'image'"),
    ("labels not the 7 emotions", {"labels": ["happy", "sad"]}, ManifestError, "labels"),
    ("checksum mismatch", {"sha256": "0" * 64}, ManifestError, "sha256"),
    ("missing model file", {"file": "nope.onnx"}, ManifestError, "does not exist"),
    ("unknown field", {"colour": "gray"}, ManifestError, "colour"),
    ("negative crop margin", {"input.crop_margin": -0.1}, ManifestError, "crop_margin"),
    ("crop margin above 1", {"input.crop_margin": 1.5}, ManifestError, "crop_margin"),
]


@pytest.mark.parametrize(
    ("case", "edit", "error", "message"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS]
)
def test_bad_manifests_are_rejected(
    tmp_path: Path, case: str, edit: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        EmotionClassifier(ClassifierConfig(model=str(_copy_model(tmp_path, edit))))


def test_a_manifest_without_crop_margin_means_the_template_framing(tmp_path: Path) -> None:
    manifest = _copy_model(tmp_path, {})
    data = json.loads(manifest.read_text())
    del data["input"]["crop_margin"]
    manifest.write_text(json.dumps(data))
    assert EmotionClassifier(ClassifierConfig(model=str(manifest))).crop_margin == 0.0


def test_the_pipeline_crops_at_the_models_margin_unless_told_otherwise(tmp_path: Path) -> None:
    manifest = _copy_model(tmp_path, {"input.crop_margin": 0.2})
    assert crop_spec_for_model(str(manifest)).margin == 0.2
    assert crop_spec_for_model(str(manifest), 0.0).margin == 0.0
    assert crop_spec_for_model(str(manifest), 0.05).margin == 0.05
    assert AnalysisConfig().crop_margin is None
    with pytest.raises(ValidationError, match="crop_margin"):
        AnalysisConfig(crop_margin=1.5)


def test_recording_an_accuracy_replaces_that_datasets_entry_only(tmp_path: Path) -> None:
    path = _copy_model(tmp_path, {})
    before = load_manifest(path)
    label = before.accuracy[0].dataset
    write_manifest(with_accuracy(before, Accuracy(dataset=label, accuracy=0.5, samples=10)), path)
    write_manifest(
        with_accuracy(load_manifest(path), Accuracy(dataset="new set", accuracy=0.25, samples=4)), path
    )
    after = {a.dataset: (a.accuracy, a.samples) for a in load_manifest(path).accuracy}
    assert after[label] == (0.5, 10)
    assert after["new set"] == (0.25, 4)
    assert len(after) == len({a.dataset for a in before.accuracy}) + 1
    assert EmotionClassifier(ClassifierConfig(model=str(path))).crop_margin == before.input.crop_margin


def test_model_given_as_onnx_path_uses_the_manifest_beside_it(tmp_path: Path) -> None:
    manifest = _copy_model(tmp_path, {})
    onnx_path = manifest.with_suffix(".onnx")
    (tmp_path / json.loads(manifest.read_text())["file"]).rename(onnx_path)
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "file": onnx_path.name}))
    clf = EmotionClassifier(ClassifierConfig(model=str(onnx_path)))
    assert clf.predict(_crops(clf, 2)).shape == (2, 7)


@pytest.mark.parametrize("model", ["no-such-model", "/nonexistent/model.json", "/nonexistent/model.onnx"])
def test_unknown_model_raises_model_file_error(model: str) -> None:
    with pytest.raises(ModelFileError, match="unknown model"):
        EmotionClassifier(ClassifierConfig(model=model))


def test_provider_choice_auto_and_explicit() -> None:
    auto = choose_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["cpu"]) == ["CPUExecutionProvider"]
    with pytest.raises(ClassifierError, match="not available"):
        choose_providers(["NoSuchExecutionProvider"])
    with pytest.raises(ClassifierError, match="empty"):
        choose_providers([])


def test_explicit_cpu_provider_is_used() -> None:
    clf = EmotionClassifier(ClassifierConfig(providers=["CPUExecutionProvider"]))
    assert clf.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    "fields",
    [{"batch_size": 0}, {"batch_size": 10_000}, {"intra_op_threads": -1}, {"model": ""}, {"unknown": 1}],
)
def test_config_rejects_out_of_bounds_values(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClassifierConfig(**fields)
