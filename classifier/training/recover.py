"""Rebuild a training checkpoint from a shipped VGG-FER ONNX graph, so a later run can start from it.

A shipped ``vgg-fer*`` graph has its batch norms folded into the convolutions (``torch.onnx`` does that
in eval mode): each Conv node holds ``W' = W * g / s`` and ``b' = beta - mean * g / s``. The network of
:mod:`model` has bias-free convolutions followed by batch norm, so the folded layer is unfolded as
``conv.weight = W'`` and a batch norm that adds ``b'`` in eval mode: its running statistics are measured
on real faces (``m``, ``v`` per channel of ``W' * x``), and ``gamma = sqrt(v + eps)``, ``beta = m + b'``.
In eval mode that is exactly ``W' * x + b'``; in training mode, where the batch statistics replace the
running ones, it is the same up to the batch's deviation from ``m``, ``v``, so fine-tuning starts from
the shipped model rather than from a network that must first relearn its scales.

The checkpoint written has best.pt's layout (``config``, ``model``, ``state``) and loads with
``load_checkpoint``; ``TrainConfig.init_from`` starts a run from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from moodstream.classifier.errors import ModelFileError
from moodstream.classifier.training.config import TrainConfig
from moodstream.classifier.training.model import VggFer
from moodstream.classifier.training.trainer import TrainState, build_model, normalise
from moodstream.common.checksums import file_sha256

Layers = list[tuple[np.ndarray, np.ndarray]]
"""(weight, bias) pairs of a graph's Conv or Gemm nodes, in graph order."""


def folded_layers(graph_path: Path) -> tuple[Layers, Layers]:
    """ONNX file -> ([(conv weight, conv bias)] in graph order, [(gemm weight, gemm bias)] in graph order)."""
    model = onnx.load(str(graph_path))
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs: Layers = []
    gemms: Layers = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        if len(node.input) < 3 or node.input[1] not in values or node.input[2] not in values:
            raise ModelFileError(
                f"{graph_path}: {node.op_type} node {node.name!r} has no constant weight and bias"
            )
        pair = (values[node.input[1]], values[node.input[2]])
        (convs if node.op_type == "Conv" else gemms).append(pair)
    return convs, gemms


def unfold(net: VggFer, graph_path: Path, faces: np.ndarray) -> VggFer:
    """Load ``graph_path``'s folded weights into ``net`` (same width) and fit its batch norms on ``faces``.

    ``faces``: (N, 48, 48) uint8 training faces (a few thousand suffice). Raises ModelFileError when the
    graph's layers do not match the network's shapes.
    """
    convs, gemms = folded_layers(graph_path)
    conv_modules = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.features if isinstance(m, torch.nn.BatchNorm2d)]
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    if len(convs) != len(conv_modules) or len(gemms) != len(linears):
        raise ModelFileError(
            f"{graph_path}: expected {len(conv_modules)} Conv and {len(linears)} Gemm nodes, "
            f"got {len(convs)} and {len(gemms)}"
        )
    with torch.no_grad():
        for (weight, bias), conv, norm in zip(convs, conv_modules, norms, strict=True):
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ModelFileError(
                    f"{graph_path}: conv weight {weight.shape} does not fit {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(bias.copy()))
            mean, var = _statistics(norm)
            mean.zero_()
            var.fill_(1.0 - norm.eps)
        for (weight, bias), linear in zip(gemms, linears, strict=True):
            if tuple(weight.shape) != tuple(linear.weight.shape):
                raise ModelFileError(
                    f"{graph_path}: dense weight {weight.shape} does not fit {tuple(linear.weight.shape)}"
                )
            linear.weight.copy_(torch.from_numpy(weight.copy()))
            linear.bias.copy_(torch.from_numpy(bias.copy()))
        _fit_norms(net, conv_modules, norms, faces)
    return net.eval()


def _fit_norms(
    net: VggFer, convs: list[torch.nn.Conv2d], norms: list[torch.nn.BatchNorm2d], faces: np.ndarray
) -> None:
    """Measure each conv output's per-channel mean and variance on ``faces`` and re-express the norms."""
    sums: list[list[torch.Tensor]] = [[] for _ in convs]

    def recorder(index: int):  # type: ignore[no-untyped-def]
        def hook(_module, _inputs, output):  # type: ignore[no-untyped-def]
            sums[index].append(output.transpose(0, 1).reshape(output.shape[1], -1).double())

        return hook

    handles = [conv.register_forward_hook(recorder(i)) for i, conv in enumerate(convs)]
    net.eval()
    for start in range(0, len(faces), 256):
        net(normalise(faces[start : start + 256]))
    for handle in handles:
        handle.remove()
    for values, norm in zip(sums, norms, strict=True):
        stacked = torch.cat(values, dim=1)
        mean, var = stacked.mean(dim=1), stacked.var(dim=1, unbiased=False)
        running_mean, running_var = _statistics(norm)
        running_mean.copy_(mean.float())
        running_var.copy_(var.float())
        norm.bias.add_(mean.float())
        norm.weight.copy_(torch.sqrt(var + norm.eps).float())


def _statistics(norm: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch norm's running mean and variance buffers (VggFer's norms always track them)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("batch norm without running statistics")
    return norm.running_mean, norm.running_var


def recover_checkpoint(graph_path: Path, config: TrainConfig, faces: np.ndarray, out: Path) -> VggFer:
    """Write ``out`` (best.pt layout) holding ``graph_path``'s network rebuilt with ``config``'s shape."""
    net = unfold(build_model(config), graph_path, faces)
    state = TrainState()
    origin = f"{graph_path.name} (sha256 {file_sha256(graph_path)[:12]}...)"
    saved = {"config": config.model_dump(), "model": net.state_dict(), "state": state.__dict__}
    torch.save({**saved, "recovered_from": origin}, out)
    return net
