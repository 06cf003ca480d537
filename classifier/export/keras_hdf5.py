"""Rebuild a legacy Keras (2.x, TensorFlow backend) HDF5 CNN in PyTorch from its stored graph and weights.

Export-time only (needs ``h5py`` and ``torch``, the ``train`` extra). Supports the layer types the FER
mini-Xception uses: InputLayer, Conv2D, SeparableConv2D, BatchNormalization, Activation (relu, softmax,
linear), MaxPooling2D, Add, GlobalAveragePooling2D. Padding follows TensorFlow's "same" rule (the extra
row/column goes at the bottom/right), so outputs match Keras to float rounding.

The rebuilt module takes (N, C, H, W) float32 (the Keras model's NHWC input, transposed) and returns
the Keras model's output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Op = Callable[[list[torch.Tensor]], torch.Tensor]


class KerasConversionError(ValueError):
    """The HDF5 file holds a layer or setting this converter does not support."""


@dataclass(frozen=True)
class _Node:
    """One Keras layer in graph order: its name, its torch operation and the names of its inputs."""

    name: str
    inputs: tuple[str, ...]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float
) -> torch.Tensor:
    """Pad an (N, C, H, W) tensor the way TensorFlow's "same" padding does."""
    top, bottom = _same_padding(int(x.shape[2]), kernel[0], stride[0])
    left, right = _same_padding(int(x.shape[3]), kernel[1], stride[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class KerasGraph(nn.Module):
    """A Keras functional graph replayed in PyTorch; parameters are buffers (inference only)."""

    def __init__(self, nodes: list[_Node], ops: dict[str, Op], params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._nodes = nodes
        self._ops = ops
        for key, value in params.items():
            self.register_buffer(key, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 -> the last layer's output."""
        values: dict[str, torch.Tensor] = {}
        for node in self._nodes:
            args = [values[i] for i in node.inputs] if node.inputs else [x]
            values[node.name] = self._ops[node.name](args)
        return values[self._nodes[-1].name]


def _read_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """All datasets below one layer's weight group, keyed by their short name (kernel, bias, gamma, ...)."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(obj, dtype=np.float32)

    group.visititems(visit)
    return found


class _Builder:
    """Turns one Keras layer config + weights into a torch operation, registering its parameters."""

    def __init__(self) -> None:
        self.params: dict[str, torch.Tensor] = {}

    def _param(self, layer: str, key: str, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        self.params[f"{layer}__{key}"] = tensor
        return tensor

    def build(self, kind: str, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        method = getattr(self, f"_{kind.lower()}", None)
        if method is None:
            raise KerasConversionError(f"layer {name!r}: unsupported Keras layer type {kind!r}")
        op: Op = method(name, cfg, w)
        return op

    def _inputlayer(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        return lambda xs: xs[0]

    def _conv(self, name: str, cfg: dict[str, Any], kernel: torch.Tensor, groups: int) -> Op:
        stride = tuple(cfg["strides"])
        size = tuple(cfg["kernel_size"])
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise KerasConversionError(f"layer {name!r}: dilated convolutions are not supported")
        same = cfg["padding"] == "same"

        def conv(xs: list[torch.Tensor]) -> torch.Tensor:
            x = _pad_same(xs[0], size, stride, 0.0) if same else xs[0]
            return F.conv2d(x, kernel, stride=stride, groups=groups)

        return conv

    def _conv2d(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        kernel = self._param(name, "kernel", w["kernel"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
        conv = self._conv(name, cfg, kernel, groups=1)
        bias = self._param(name, "bias", w["bias"]) if cfg.get("use_bias") else None
        return self._activate(name, cfg, conv, bias)

    def _separableconv2d(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        if cfg.get("depth_multiplier", 1) != 1:
            raise KerasConversionError(f"layer {name!r}: depth_multiplier != 1 is not supported")
        depthwise = self._param(name, "depthwise", w["depthwise_kernel"].transpose(2, 3, 0, 1))
        pointwise = self._param(name, "pointwise", w["pointwise_kernel"].transpose(3, 2, 0, 1))
        spatial = self._conv(name, cfg, depthwise, groups=int(depthwise.shape[0]))

        def separable(xs: list[torch.Tensor]) -> torch.Tensor:
            return F.conv2d(spatial(xs), pointwise)

        bias = self._param(name, "bias", w["bias"]) if cfg.get("use_bias") else None
        return self._activate(name, cfg, separable, bias)

    def _activate(self, name: str, cfg: dict[str, Any], op: Op, bias: torch.Tensor | None) -> Op:
        act = _activation(name, cfg.get("activation", "linear"))

        def run(xs: list[torch.Tensor]) -> torch.Tensor:
            y = op(xs)
            if bias is not None:
                y = y + bias.view(1, -1, 1, 1)
            return act(y)

        return run

    def _batchnormalization(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        scale = w["gamma"] / np.sqrt(w["moving_variance"] + float(cfg["epsilon"]))
        shift = w["beta"] - w["moving_mean"] * scale
        s = self._param(name, "scale", scale.reshape(1, -1, 1, 1))
        b = self._param(name, "shift", shift.reshape(1, -1, 1, 1))
        return lambda xs: xs[0] * s + b

    def _activation(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        act = _activation(name, cfg["activation"])
        return lambda xs: act(xs[0])

    def _maxpooling2d(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        pool = tuple(cfg["pool_size"])
        stride = tuple(cfg["strides"] or pool)
        same = cfg["padding"] == "same"

        def maxpool(xs: list[torch.Tensor]) -> torch.Tensor:
            x = _pad_same(xs[0], pool, stride, -math.inf) if same else xs[0]
            return F.max_pool2d(x, pool, stride)

        return maxpool

    def _add(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        def add(xs: list[torch.Tensor]) -> torch.Tensor:
            total = xs[0]
            for x in xs[1:]:
                total = total + x
            return total

        return add

    def _globalaveragepooling2d(self, name: str, cfg: dict[str, Any], w: dict[str, np.ndarray]) -> Op:
        return lambda xs: xs[0].mean(dim=(2, 3))


def _activation(layer: str, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "linear": lambda x: x,
        "relu": F.relu,
        "softmax": lambda x: F.softmax(x, dim=1),
    }
    if name not in table:
        raise KerasConversionError(f"layer {layer!r}: unsupported activation {name!r}")
    return table[name]


def _inbound_names(layer: dict[str, Any]) -> tuple[str, ...]:
    """Names of a Keras 2 layer's input layers (first call of the layer only)."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise KerasConversionError(f"layer {layer['name']!r}: shared layers are not supported")
    return tuple(entry[0] for entry in nodes[0]) if nodes else ()


def load_keras_hdf5(path: Path) -> tuple[KerasGraph, tuple[int, int, int]]:
    """Read a Keras 2 functional-model HDF5 file.

    Returns the rebuilt torch module (eval mode) and the model's input shape as (H, W, C).
    """
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        if config.get("class_name") not in ("Model", "Functional"):
            raise KerasConversionError(f"{path}: only functional Keras models are supported")
        builder = _Builder()
        nodes: list[_Node] = []
        ops: dict[str, Op] = {}
        input_shape: tuple[int, int, int] | None = None
        for layer in config["config"]["layers"]:
            name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
            weights = _read_weights(f["model_weights"][name]) if name in f["model_weights"] else {}
            if kind == "InputLayer":
                _, h, w, c = cfg["batch_input_shape"]
                input_shape = (int(h), int(w), int(c))
            ops[name] = builder.build(kind, name, cfg, weights)
            nodes.append(_Node(name=name, inputs=_inbound_names(layer)))
    if input_shape is None:
        raise KerasConversionError(f"{path}: no InputLayer found")
    return KerasGraph(nodes, ops, builder.params).eval(), input_shape
