"""Export a VGG-FER checkpoint (best.pt) to ONNX + manifest for ``classifier/models``."""

from __future__ import annotations

from pathlib import Path

import torch

from moodstream.classifier.export.onnx_io import export_onnx
from moodstream.classifier.manifest import InputSpec, ModelManifest, write_manifest
from moodstream.classifier.training.config import TrainConfig
from moodstream.classifier.training.model import Probabilities
from moodstream.classifier.training.trainer import INPUT_MEAN, INPUT_STD, build_model
from moodstream.common.checksums import file_sha256
from moodstream.schemas.labels import EMOTIONS

MAX_MODEL_BYTES = 30 * 1024 * 1024
"""Largest ONNX file we ship in the repository."""


def export_checkpoint(checkpoint: Path, out_dir: Path, name: str) -> ModelManifest:
    """Write ``out_dir/NAME.onnx`` ((N, 1, 48, 48) float32 -> (N, 7) probabilities) and ``NAME.json``.

    The graph includes the softmax and, when the run used it, horizontal-flip averaging.
    Raises ValueError when the exported file exceeds MAX_MODEL_BYTES.
    """
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = TrainConfig.model_validate(saved["config"])
    net = build_model(config)
    net.load_state_dict(saved["model"])
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(Probabilities(net, config.flip_tta), torch.zeros(1, 1, 48, 48), onnx_path, "probabilities")
    size = onnx_path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"{onnx_path} is {size / 2**20:.1f} MiB; models shipped must be <= 30 MiB")
    state = saved["state"]
    manifest = ModelManifest(
        name=name,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        input=InputSpec(
            name="input", width=48, height=48, color="gray", layout="NCHW", mean=INPUT_MEAN, std=INPUT_STD
        ),
        output="probabilities",
        labels=EMOTIONS,
        architecture=(
            f"VGG16 topology (13 conv + BN, 3 FC), width {config.width}/64, fc {config.fc_width}, "
            f"flip TTA {config.flip_tta}"
        ),
        source=(
            f"trained from scratch on FER-2013 Training by classifier.training "
            f"(best validation epoch {state['best_epoch']}, seed {config.seed})"
        ),
        license="MIT (moodstream); trained on FER-2013, which is for research use only",
    )
    write_manifest(manifest, out_dir / f"{name}.json")
    return manifest
