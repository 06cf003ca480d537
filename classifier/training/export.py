"""Export a VGG-FER checkpoint (best.pt) to ONNX + manifest for ``classifier/models``.

With ``calibrate`` (a FER folder split, normally PublicTest = ``validation/``), a temperature is fitted
to the probabilities the exported graph computes, applied inside the graph, written into the ONNX
``metadata_props`` (``moodstream.temperature``) and into the manifest's ``calibration`` block
(manifest schema_version 2), so that the runner can check manifest == graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from moodstream.classifier.calibration import (
    TEMPERATURE_METADATA_KEY,
    expected_calibration_error,
    fit_temperature,
    fuse_logit_views,
    objective_wording,
    tempered_probabilities,
)
from moodstream.classifier.dataset import load_split
from moodstream.classifier.export.onnx_io import export_onnx
from moodstream.classifier.manifest import (
    CALIBRATED_SCHEMA_VERSION,
    Calibration,
    InputSpec,
    ModelManifest,
    write_manifest,
)
from moodstream.classifier.training.config import Fusion, TrainConfig
from moodstream.classifier.training.model import Probabilities, VggFer
from moodstream.classifier.training.trainer import INPUT_MEAN, INPUT_STD, build_model, normalise
from moodstream.common.checksums import file_sha256
from moodstream.schemas.labels import EMOTIONS

MAX_MODEL_BYTES = 30 * 1024 * 1024
"""Largest ONNX file we ship in the repository."""


def load_checkpoint(checkpoint: Path) -> tuple[TrainConfig, VggFer, dict[str, Any]]:
    """best.pt / last.pt -> (its TrainConfig, the network in eval mode with its weights, its state dict;
    a checkpoint rebuilt by ``recover`` has ``recovered_from`` in its state)."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = TrainConfig.model_validate(saved["config"])
    net = build_model(config)
    net.load_state_dict(saved["model"])
    state = dict(saved["state"])
    if "recovered_from" in saved:
        state["recovered_from"] = saved["recovered_from"]
    return config, net.eval(), state


@torch.no_grad()
def view_logits(net: torch.nn.Module, images: np.ndarray, flip_tta: bool, batch: int = 256) -> np.ndarray:
    """(N, 48, 48) uint8 faces -> (V, N, 7) float64 logits, V = 2 (face, mirror) with flip TTA else 1."""
    net.eval()
    views: list[list[np.ndarray]] = [[] for _ in range(2 if flip_tta else 1)]
    for start in range(0, len(images), batch):
        x = normalise(images[start : start + batch])
        views[0].append(net(x).double().numpy())
        if flip_tta:
            views[1].append(net(torch.flip(x, dims=[3])).double().numpy())
    return np.stack([np.concatenate(v) for v in views])


def calibrate(
    nets: Sequence[torch.nn.Module],
    flip_tta: bool,
    split_dir: Path,
    label: str | None = None,
    fusion: Fusion = "probabilities",
) -> Calibration:
    """Fit the temperature of the graph output of ``nets`` (one network, or an ensemble's members) on the
    folder split ``split_dir`` (<emotion>/*.jpg), for the graph's ``fusion`` of views and networks.

    ``label`` names the split in the manifest (default: the folder's last two path parts).
    """
    images, labels = load_split(split_dir)
    views = np.concatenate([view_logits(net, images, flip_tta) for net in nets])
    if fusion == "logits":
        views = fuse_logit_views(views)
    temperature = fit_temperature(views, labels)
    before = expected_calibration_error(tempered_probabilities(views, 1.0), labels)
    after = expected_calibration_error(tempered_probabilities(views, temperature), labels)
    return Calibration(
        temperature=round(temperature, 6),
        fitted_on=label or str(Path(split_dir.parent.name) / split_dir.name),
        samples=len(labels),
        objective=objective_wording(len(nets), flip_tta, fusion),
        ece_before=round(before, 6),
        ece_after=round(after, 6),
    )


def write_graph_metadata(path: Path, properties: dict[str, str]) -> None:
    """Add (or replace) string ``metadata_props`` of the ONNX file at ``path`` in place."""
    model = onnx.load(str(path))
    kept = {p.key: p.value for p in model.metadata_props if p.key not in properties}
    onnx.helper.set_model_props(model, {**kept, **properties})
    onnx.save(model, str(path))


def export_checkpoint(
    checkpoint: Path | Sequence[Path],
    out_dir: Path,
    name: str,
    calibrate_on: Path | None = None,
    flip_tta: bool | None = None,
    calibration_label: str | None = None,
    fusion: Fusion = "probabilities",
) -> ModelManifest:
    """Write ``out_dir/NAME.onnx`` ((N, 1, 48, 48) float32 -> (N, 7) probabilities) and ``NAME.json``.

    ``checkpoint``: one best.pt, or several (an ensemble, averaged in one graph; the first one's flip
    setting applies to all). The graph includes the softmax and, when the run used it, horizontal-flip
    averaging; with ``calibrate_on`` (a folder split) also the fitted temperature. Raises ValueError when
    the exported file exceeds MAX_MODEL_BYTES, DatasetError for a bad calibration folder. ``flip_tta``
    overrides the run's choice of flip averaging (None keeps it); ``calibration_label`` names the
    calibration split; ``fusion`` ("probabilities" or "logits", see ``Probabilities``) says how views
    and networks are combined.
    """
    paths = [checkpoint] if isinstance(checkpoint, Path) else list(checkpoint)
    loaded = [load_checkpoint(path) for path in paths]
    config, _, _ = loaded[0]
    nets = [net for _, net, _ in loaded]
    if flip_tta is not None:
        config = config.model_copy(update={"flip_tta": flip_tta})
    calibration = None
    if calibrate_on is not None:
        calibration = calibrate(nets, config.flip_tta, calibrate_on, calibration_label, fusion)
    temperature = calibration.temperature if calibration is not None else 1.0
    onnx_path = out_dir / f"{name}.onnx"
    graph = Probabilities(nets, config.flip_tta, temperature, fusion)
    export_onnx(graph, torch.zeros(1, 1, 48, 48), onnx_path, "probabilities")
    if calibration is not None:
        write_graph_metadata(onnx_path, {TEMPERATURE_METADATA_KEY: repr(calibration.temperature)})
    size = onnx_path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"{onnx_path} is {size / 2**20:.1f} MiB; models shipped must be <= 30 MiB")
    manifest = ModelManifest(
        schema_version=CALIBRATED_SCHEMA_VERSION if calibration is not None else 1,
        name=name,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        input=InputSpec(
            name="input", width=48, height=48, color="gray", layout="NCHW", mean=INPUT_MEAN, std=INPUT_STD
        ),
        output="probabilities",
        labels=EMOTIONS,
        architecture=_architecture([c for c, _, _ in loaded], config.flip_tta, fusion),
        source=_source([(c, s) for c, _, s in loaded]),
        license="MIT (moodstream); trained on FER-2013, which is for research use only",
        calibration=calibration,
    )
    write_manifest(manifest, out_dir / f"{name}.json")
    return manifest


def _source(runs: list[tuple[TrainConfig, dict[str, Any]]]) -> str:
    """Provenance line of the manifest: each run's best epoch and seed."""
    parts = [_run_source(config, state) for config, state in runs]
    if len(parts) == 1:
        scratch = "from scratch " if "from" not in parts[0] else ""
        return f"trained {scratch}on FER-2013 Training by classifier.training ({parts[0]})"
    return (
        f"ensemble of {len(parts)} networks trained on FER-2013 Training by classifier.training ("
        + "; ".join(parts)
        + ")"
    )


def _run_source(config: TrainConfig, state: dict[str, Any]) -> str:
    """One network's provenance: a recovered graph, or its run (best epoch, seed, starting point)."""
    if "recovered_from" in state:
        return f"recovered from {state['recovered_from']}"
    started = f", started from {Path(config.init_from).name}" if config.init_from else ""
    if "averaged_epochs" in state:
        epochs = ", ".join(str(e) for e in state["averaged_epochs"])
        return (
            f"weights of epochs {epochs} averaged (SWA, {config.lr_schedule} LR {config.lr}), batch norms "
            f"re-measured on {state['batch_norm_faces']} training faces, seed {config.seed}{started}"
        )
    return f"best validation epoch {state['best_epoch']}, seed {config.seed}{started}"


def _architecture(configs: list[TrainConfig], flip_tta: bool, fusion: Fusion = "probabilities") -> str:
    """One-line description of the exported graph (one network or an ensemble) for the manifest."""
    lines = []
    for config in configs:
        extras = ", per-crop standardisation in the graph" if config.standardize else ""
        lines.append(
            f"VGG16 topology (13 conv + BN, 3 FC), width {config.width}/64, fc {config.fc_width}, "
            f"flip TTA {flip_tta}{extras}"
        )
    if len(lines) == 1:
        return lines[0] + (", views fused by the mean of their logits" if fusion == "logits" else "")
    return f"ensemble of {len(lines)} ({fusion} averaged in the graph): " + "; ".join(lines)
