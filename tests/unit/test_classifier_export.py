"""Calibrated VGG export: ONNX/torch parity, temperature in manifest and graph, bad calibration manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the train extra (torch)")
pytest.importorskip("onnx", reason="export needs the train extra (onnx)")

from moodstream.classifier import ClassifierConfig, EmotionClassifier, ManifestError  # noqa: E402
from moodstream.classifier.calibration import TEMPERATURE_METADATA_KEY  # noqa: E402
from moodstream.classifier.training.__main__ import main as training_main  # noqa: E402
from moodstream.classifier.training.config import FUSIONS, TrainConfig  # noqa: E402
from moodstream.classifier.training.export import write_graph_metadata  # noqa: E402
from moodstream.classifier.training.model import Probabilities, VggFer  # noqa: E402
from moodstream.classifier.training.trainer import TrainState, normalise  # noqa: E402
from moodstream.schemas.labels import EMOTIONS  # noqa: E402

MAX_ABS_DIFF = 1e-4


def _checkpoint(path: Path, scale: float = 1.0) -> VggFer:
    """A tiny standardising VggFer (seeded init, BN statistics off 0/1) saved the way train saves best.pt;
    ``scale`` multiplies its dense layers (spreads the logits, so that faces and mirrors disagree)."""
    torch.manual_seed(0)
    net = VggFer(width=4, fc_width=8, standardize=True)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(scale)
                module.bias.mul_(scale)
    config = TrainConfig(data="unused", out_dir="unused", width=4, fc_width=8, standardize=True)
    torch.save(
        {"config": config.model_dump(), "model": net.state_dict(), "state": vars(TrainState(best_epoch=1))},
        path,
    )
    return net.eval()


def _split(root: Path, per_class: int = 3) -> Path:
    """A calibration split of random 48x48 gray PNGs in ``root/<emotion>/``."""
    rng = np.random.default_rng(1)
    for emotion in EMOTIONS:
        (root / emotion).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / emotion / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VggFer]:
    """(manifest path, torch network) of a tiny model exported with --calibrate."""
    tmp = tmp_path_factory.mktemp("export")
    net = _checkpoint(tmp / "best.pt")
    args = ["export", str(tmp / "best.pt"), str(tmp / "models"), "--name", "tiny-v2"]
    assert training_main([*args, "--calibrate", str(_split(tmp / "validation"))]) == 0
    return tmp / "models" / "tiny-v2.json", net


def test_onnx_matches_torch_with_flip_averaging_and_temperature(exported: tuple[Path, VggFer]) -> None:
    manifest_path, net = exported
    manifest = json.loads(manifest_path.read_text())
    assert manifest["schema_version"] == 2
    calibration = manifest["calibration"]
    assert 0.05 <= calibration["temperature"] <= 20.0 and calibration["samples"] == 21
    assert 0.0 <= calibration["ece_after"] <= 1.0 and "softmax(logits / T)" in calibration["objective"]

    crops = np.random.default_rng(2).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    with torch.no_grad():
        expected = Probabilities(net, flip_tta=True, temperature=calibration["temperature"])(normalise(crops))
    got = EmotionClassifier(ClassifierConfig(model=str(manifest_path))).predict(list(crops))
    assert float(np.abs(got - expected.numpy()).max()) <= MAX_ABS_DIFF
    # A temperature != 1 must change the output (it really is in the graph).
    with torch.no_grad():
        untempered = Probabilities(net, flip_tta=True)(normalise(crops)).numpy()
    if abs(calibration["temperature"] - 1.0) > 0.05:
        assert float(np.abs(got - untempered).max()) > MAX_ABS_DIFF


def test_a_logit_fusing_export_matches_torch_and_says_what_its_temperature_was_fitted_to(
    tmp_path: Path,
) -> None:
    net = _checkpoint(tmp_path / "best.pt", scale=8.0)
    args = ["export", str(tmp_path / "best.pt"), str(tmp_path / "models"), "--name", "fused"]
    split = str(_split(tmp_path / "validation"))
    assert training_main([*args, "--fusion", "logits", "--calibrate", split]) == 0
    manifest = json.loads((tmp_path / "models" / "fused.json").read_text())
    calibration = manifest["calibration"]
    assert calibration["objective"].endswith("softmax(mean over views (face, mirror) of logits / T)")
    assert "fused by the mean of their logits" in manifest["architecture"]

    crops = np.random.default_rng(2).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    temperature = calibration["temperature"]
    with torch.no_grad():
        fused = Probabilities(net, True, temperature, fusion="logits")(normalise(crops)).numpy()
        at_one = [Probabilities(net, True, 1.0, fusion=f)(normalise(crops)).numpy() for f in FUSIONS]
    got = EmotionClassifier(ClassifierConfig(model=str(tmp_path / "models" / "fused.json"))).predict(
        list(crops)
    )
    assert float(np.abs(got - fused).max()) <= MAX_ABS_DIFF
    assert float(np.abs(at_one[0] - at_one[1]).max()) > MAX_ABS_DIFF  # the two fusions really differ


def test_an_unknown_fusion_is_refused() -> None:
    with pytest.raises(ValueError, match="fusion must be one of"):
        Probabilities(VggFer(width=4, fc_width=8), True, fusion="median")


def _copy(exported: tuple[Path, VggFer], tmp_path: Path, edit: dict[str, Any]) -> Path:
    """Copy the exported model to tmp_path with manifest keys replaced (None deletes); new manifest path."""
    source, _ = exported
    manifest = json.loads(source.read_text())
    shutil.copy(source.with_suffix(".onnx"), tmp_path / manifest["file"])
    for key, value in edit.items():
        if value is None:
            manifest.pop(key)
        elif key.startswith("calibration."):
            manifest["calibration"][key.removeprefix("calibration.")] = value
        else:
            manifest[key] = value
    target = tmp_path / "edited.json"
    target.write_text(json.dumps(manifest))
    return target


BAD_CALIBRATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("calibrated schema without calibration", {"calibration": None}, "no calibration block"),
    ("temperature differs from the graph", {"calibration.temperature": 3.5}, "manifest and graph disagree"),
    ("calibration in a schema 1 manifest", {"schema_version": 1}, "calibration needs schema_version 2"),
    ("graph temperature, manifest without any", {"schema_version": None, "calibration": None}, "declares no"),
]


@pytest.mark.parametrize(("case", "edit", "message"), BAD_CALIBRATIONS, ids=[c[0] for c in BAD_CALIBRATIONS])
def test_manifest_lacking_or_misstating_calibration_is_rejected_naming_the_file(
    exported: tuple[Path, VggFer], tmp_path: Path, case: str, edit: dict[str, Any], message: str
) -> None:
    manifest_path = _copy(exported, tmp_path, edit)
    with pytest.raises(ManifestError, match=message) as caught:
        EmotionClassifier(ClassifierConfig(model=str(manifest_path)))
    assert str(manifest_path) in str(caught.value)


def test_graph_without_temperature_metadata_is_rejected(
    exported: tuple[Path, VggFer], tmp_path: Path
) -> None:
    manifest_path = _copy(exported, tmp_path, {})
    onnx_path = tmp_path / json.loads(manifest_path.read_text())["file"]
    write_graph_metadata(onnx_path, {TEMPERATURE_METADATA_KEY: "not a number"})
    config = ClassifierConfig(model=str(manifest_path), verify_checksum=False)
    with pytest.raises(ManifestError, match="manifest and graph disagree"):
        EmotionClassifier(config)


def test_export_without_calibration_stays_schema_1(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "best.pt")
    assert (
        training_main(
            ["export", str(tmp_path / "best.pt"), str(tmp_path), "--name", "plain", "--no-flip-tta"]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "plain.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["calibration"] is None
    assert "flip TTA False" in manifest["architecture"]
    assert EmotionClassifier(ClassifierConfig(model=str(tmp_path / "plain.json"))).predict([]).shape == (0, 7)
