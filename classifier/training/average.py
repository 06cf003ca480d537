"""Weight averaging of one run's epoch snapshots (stochastic weight averaging, Izmailov et al. 2018).

A run with ``lr_schedule="constant"`` and ``keep_snapshots`` walks around a wide minimum at a fixed
learning rate and leaves ``epoch_NNN.pt`` after every epoch. The mean of those snapshots' weights sits
nearer the minimum's centre than any one of them; its batch norms are then re-measured on training faces
(the averaged convolutions no longer produce the statistics any snapshot recorded). The result is
written in best.pt's layout, so ``export`` and ``init_from`` read it like any trained network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodstream.classifier.errors import ModelFileError
from moodstream.classifier.training.config import TrainConfig
from moodstream.classifier.training.model import VggFer
from moodstream.classifier.training.trainer import build_model, normalise

SHAPE_FIELDS = ("width", "fc_width", "standardize")
"""TrainConfig fields that must agree between snapshots for their weights to be averaged."""


def load_snapshots(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Read best.pt-layout checkpoints; ModelFileError naming the file when one is unreadable, when
    fewer than two are given, or when their network shapes (``SHAPE_FIELDS``) differ."""
    if len(paths) < 2:
        raise ModelFileError(f"averaging needs at least 2 snapshots, got {len(paths)}")
    snapshots = []
    for path in paths:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
            TrainConfig.model_validate(saved["config"])
            saved["model"].items()
        except Exception as exc:  # torch.load raises several unrelated types for unreadable files
            raise ModelFileError(
                f"{path} is not a training checkpoint (config + model) ({type(exc).__name__})"
            ) from exc
        snapshots.append(saved)
    first = {k: snapshots[0]["config"][k] for k in SHAPE_FIELDS}
    for path, saved in zip(paths, snapshots, strict=True):
        shape = {k: saved["config"][k] for k in SHAPE_FIELDS}
        if shape != first:
            raise ModelFileError(f"{path} is a network of {shape}; expected {first} as in {paths[0]}")
    return snapshots


def mean_weights(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (weights, biases, running statistics) over
    ``states``; integer buffers (batch norm step counters) are taken from the last state."""
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            total = torch.stack([state[key].double() for state in states]).mean(dim=0)
            averaged[key] = total.to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged


@torch.no_grad()
def remeasure_batch_norms(net: VggFer, faces: np.ndarray, batch: int = 256) -> None:
    """Replace every batch norm's running mean and variance by their values over ``faces``
    ((N, 48, 48) uint8 training faces) and their mirror images, in place; leaves ``net`` in eval mode."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all batches
    net.train()
    for start in range(0, len(faces), batch):
        x = normalise(faces[start : start + batch])
        net(x)
        net(torch.flip(x, dims=[3]))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    net.eval()


def average_snapshots(paths: Sequence[Path], faces: np.ndarray, out: Path) -> VggFer:
    """Average the snapshots at ``paths`` (one run's epoch_NNN.pt), re-measure the batch norms on
    ``faces`` and write ``out`` (best.pt layout; its state records the averaged epochs and the number
    of faces). Returns the averaged network in eval mode."""
    snapshots = load_snapshots(paths)
    config = TrainConfig.model_validate(snapshots[-1]["config"])
    net = build_model(config)
    net.load_state_dict(mean_weights([s["model"] for s in snapshots]))
    remeasure_batch_norms(net, faces)
    state = dict(snapshots[-1]["state"])
    state["averaged_epochs"] = [int(s["state"]["epoch"]) for s in snapshots]
    state["batch_norm_faces"] = len(faces)
    torch.save({"config": config.model_dump(), "model": net.state_dict(), "state": state}, out)
    return net
