"""Export the MTCNN networks (P-Net, R-Net, O-Net) to ONNX for the runtime detector.

Source weights: the MIT-licensed MTCNN state dicts carried by the ``facenet-pytorch`` wheel
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``). facenet-pytorch itself is not imported (its
torchvision dependency has no CPU build here); the three networks are defined below and the
state dicts are loaded into them with torch. torch is needed by this script only (the ``train``
extra); the runtime detector needs onnxruntime, numpy and OpenCV.

Reproduce the shipped files (byte for byte with the same torch/onnx versions)::

    cd /tmp && pip download --no-deps facenet-pytorch==2.6.0
    unzip -o facenet_pytorch-2.6.0-py3-none-any.whl 'facenet_pytorch/data/*'
    python -m moodstream.detector.export_onnx --weights /tmp/facenet_pytorch/data --out detector/models

Layout of the exported graphs (all three): input ``image`` is (N, H, W, 3) float32 **BGR** pixel
values in [0, 255] (channels-last, exactly what OpenCV decodes, averaged). The networks were trained on
RGB input normalised as (x - 127.5) * 0.0078125 in NCHW; the channel swap and that normalisation
are folded exactly into the first convolution (no convolution in MTCNN pads, so the fold is exact
up to float rounding), and a transpose to NCHW is the first node of each graph.

Outputs:
* P-Net: ``regression`` (N, 4, H', W') float32, ``face_prob`` (N, H', W') float32, with
  H' = ceil((H - 2) / 2) - 4 (likewise W'): one cell per 12x12 window at stride 2.
* R-Net (H = W = 24): ``regression`` (N, 4), ``face_prob`` (N,).
* O-Net (H = W = 48): ``regression`` (N, 4), ``landmarks`` (N, 10) (5 x then 5 y, relative to the
  box), ``face_prob`` (N,).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from moodstream.common.checksums import file_sha256

OPSET = 17
NORM_MEAN = 127.5
NORM_SCALE = 0.0078125
MODEL_NAMES = ("pnet", "rnet", "onet")


def face_probability(scores: torch.Tensor) -> torch.Tensor:
    """Face probability: softmax over the (background, face) outputs, face channel.

    Kept as a softmax on purpose: the equivalent sigmoid(z1 - z0) rounds differently near 1.0 and
    changed which of two tied proposals won on one reference frame.
    """
    return torch.softmax(scores, dim=1)[:, 1]


def face_probability_map(scores: torch.Tensor) -> torch.Tensor:
    """`face_probability` of a (N, 2, H, W) score map -> (N, H, W), written out as exp(z - max) / sum.

    The same arithmetic as a softmax over the two channels, but ONNX Runtime runs a Softmax over axis 1
    of a 4-D tensor through transposes that took about 9 % of P-Net's time; these element-wise ops do not.
    """
    background, face = scores[:, 0], scores[:, 1]
    largest = torch.maximum(background, face)
    face_exp = torch.exp(face - largest)
    return face_exp / (torch.exp(background - largest) + face_exp)


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)
        #: conv4_1 and conv4_2 as one 6-channel convolution (set by `prepare_for_export`), or None.
        self.merged_heads: nn.Conv2d | None = None

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2)
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        if self.merged_heads is None:
            scores, regression = self.conv4_1(x), self.conv4_2(x)
        else:
            both = self.merged_heads(x)
            scores, regression = both[:, :2], both[:, 2:]
        return regression, face_probability_map(scores)


class CaffeFlatten(nn.Module):
    """(N, C, H, W) -> (N, W * H * C) in (N, W, H, C) order: the layout the dense layers were trained on
    (the original Caffe MTCNN). `prepare_for_export` swaps it for a plain flatten and permutes the
    dense layer's columns to match, which saves a transpose per run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.flatten: nn.Module = CaffeFlatten()
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(self.flatten(x)))
        face_prob = face_probability(self.dense5_1(x))
        return self.dense5_2(x), face_prob


class ONet(nn.Module):
    """Output network on 48x48 crops: box regression, 5 landmarks, face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.flatten: nn.Module = CaffeFlatten()
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(self.flatten(x)))
        face_prob = face_probability(self.dense6_1(x))
        return self.dense6_2(x), self.dense6_3(x), face_prob


NETWORKS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}


class SplitPReLU(nn.Module):
    """PReLU written as x * a + relu(x) * (1 - a) (equal for every slope a).

    ONNX Runtime's CPU PRelu broadcasts its per-channel slope slowly; Mul/Relu/Add of this form run
    about 15 % faster in P-Net. ``spatial``: the input is (N, C, H, W), else (N, C).
    """

    slope: torch.Tensor
    relu_gain: torch.Tensor

    def __init__(self, prelu: nn.PReLU, spatial: bool) -> None:
        super().__init__()
        slope = prelu.weight.detach().clone()
        shape = (1, -1, 1, 1) if spatial else (1, -1)
        self.register_buffer("slope", slope.view(shape))
        self.register_buffer("relu_gain", (1.0 - slope).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.slope + torch.relu(x) * self.relu_gain


class PooledPReLU(nn.Module):
    """conv -> PReLU -> max-pool computed as conv' -> max-pool -> PReLU, on a quarter of the pixels.

    Max-pooling commutes with any non-decreasing function, so for a slope a >= 0 the PReLU moves past
    the pool unchanged. For a < 0 the PReLU is V-shaped and the largest value in a window is
    max(M, a * m) from the window's maximum M and minimum m; conv' therefore also computes -y for those
    channels (whose pooled value is -m). After the pool, output channel c is max(A_c, B_c) of two
    1x1 channel selections: (P_c, a P_c) for 0 <= a <= 1 (that max is PReLU for any a <= 1),
    (P_c, |a| P_c') for a < 0, and (-P_c, -a P_c) for a > 1, which gives -PReLU, so the sign of
    input channel c of the next convolution is flipped to compensate (``next_conv`` is changed).
    Every value equals the trained network's up to float rounding of the convolution sums.
    """

    def __init__(self, conv: nn.Conv2d, prelu: nn.PReLU, pool: nn.MaxPool2d, next_conv: nn.Conv2d) -> None:
        super().__init__()
        assert conv.bias is not None
        slope = prelu.weight.detach()
        channels = conv.out_channels
        negative = torch.nonzero(slope < 0).flatten()
        self.conv = nn.Conv2d(conv.in_channels, channels + len(negative), conv.kernel_size[0])
        self.pool = pool
        self.select_a = nn.Conv2d(channels + len(negative), channels, kernel_size=1, bias=False)
        self.select_b = nn.Conv2d(channels + len(negative), channels, kernel_size=1, bias=False)
        select_a = torch.zeros_like(self.select_a.weight)
        select_b = torch.zeros_like(self.select_b.weight)
        sign = torch.ones(channels)
        for c, a in enumerate(slope.tolist()):
            if a < 0:
                partner = channels + int(torch.nonzero(negative == c)[0, 0])
                select_a[c, c], select_b[c, partner] = 1.0, -a
            elif a <= 1:
                select_a[c, c], select_b[c, c] = 1.0, a
            else:
                select_a[c, c], select_b[c, c], sign[c] = -1.0, -a, -1.0
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat([conv.weight, -conv.weight[negative]]))
            self.conv.bias.copy_(torch.cat([conv.bias, -conv.bias[negative]]))  # type: ignore[union-attr]
            self.select_a.weight.copy_(select_a)
            self.select_b.weight.copy_(select_b)
            next_conv.weight.mul_(sign.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.conv(x))
        return torch.maximum(self.select_a(pooled), self.select_b(pooled))


def merge_heads(first: nn.Conv2d, second: nn.Conv2d) -> nn.Conv2d:
    """One 1x1 convolution whose output channels are ``first``'s then ``second``'s."""
    merged = nn.Conv2d(first.in_channels, first.out_channels + second.out_channels, kernel_size=1)
    assert merged.bias is not None and first.bias is not None and second.bias is not None
    with torch.no_grad():
        merged.weight.copy_(torch.cat([first.weight, second.weight]))
        merged.bias.copy_(torch.cat([first.bias, second.bias]))
    return merged


def flatten_channels_first(net: nn.Module, dense: nn.Linear, channels: int, side: int) -> None:
    """Replace ``net.flatten`` (`CaffeFlatten` of a (channels, side, side) map) by a plain flatten,
    permuting the input columns of ``dense`` so that it computes the same function."""
    index = torch.arange(channels * side * side).view(side, side, channels)  # Caffe order: [w, h, c]
    with torch.no_grad():
        dense.weight.copy_(dense.weight[:, index.permute(2, 1, 0).reshape(-1)])  # now [c, h, w]
    setattr(net, "flatten", nn.Flatten())  # noqa: B010


def prepare_for_export(name: str, net: nn.Module) -> nn.Module:
    """Rewrite a trained network into the same function as a faster ONNX Runtime graph.

    P-Net: `PooledPReLU` for conv1/prelu1/pool1 and one merged head convolution. R-Net and O-Net: the
    dense layer reads the channels-first flattening (no transpose). All: `SplitPReLU` for the
    remaining PReLUs. (`PooledPReLU` in R-Net and O-Net, and the max(y, a y) form of PReLU elsewhere,
    were measured slower: ONNX Runtime reorders its blocked layout around each Max.)
    """
    if name == "pnet":
        pooled = PooledPReLU(net.conv1, net.prelu1, net.pool1, net.conv2)  # type: ignore[arg-type]
        setattr(net, "conv1", pooled)  # noqa: B010
        setattr(net, "prelu1", nn.Identity())  # noqa: B010
        setattr(net, "pool1", nn.Identity())  # noqa: B010
        setattr(net, "merged_heads", merge_heads(net.conv4_1, net.conv4_2))  # type: ignore[arg-type]  # noqa: B010
    elif name == "rnet":
        flatten_channels_first(net, net.dense4, 64, 3)  # type: ignore[arg-type]
    else:
        flatten_channels_first(net, net.dense5, 128, 3)  # type: ignore[arg-type]
    for attr, module in list(net.named_children()):
        if isinstance(module, nn.PReLU):
            spatial = not (name == "rnet" and attr == "prelu4") and not (name == "onet" and attr == "prelu5")
            setattr(net, attr, SplitPReLU(module, spatial))
    return net


CROP_SIZES: dict[str, int] = {"rnet": 24, "onet": 48}


def fold_input_transform(conv: nn.Conv2d) -> None:
    """Make ``conv`` take BGR pixels in [0, 255] instead of RGB normalised as (x - 127.5) * 0.0078125.

    conv(W, b)((x - m) * s) == conv(W * s, b - m * s * sum(W))(x) because the convolution has no padding.
    """
    with torch.no_grad():
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(weight.shape[0])
        new_bias = bias - NORM_MEAN * NORM_SCALE * weight.sum(dim=(1, 2, 3))
        conv.weight.copy_(weight.flip(1) * NORM_SCALE)
        assert conv.bias is not None
        conv.bias.copy_(new_bias)


def load_network(name: str, weights_dir: Path, fold: bool = True) -> nn.Module:
    """Build network ``name`` and load ``weights_dir/<name>.pt`` (a plain state dict) into it.

    With ``fold`` the input transform is folded into conv1 and the graph rewritten for speed (the
    exported form); without it the network is as trained, on RGB normalised input (used to verify).
    """
    net = NETWORKS[name]()
    state = torch.load(weights_dir / f"{name}.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    if fold:
        fold_input_transform(net.conv1)  # type: ignore[arg-type]
        prepare_for_export(name, net)
    return net.eval()


def verify_export(name: str, weights_dir: Path, onnx_path: Path) -> float:
    """Max abs difference between the ONNX file (BGR pixels) and the network as trained (RGB, normalised)."""
    import onnxruntime as ort

    size = CROP_SIZES.get(name, 37)
    pixels = np.random.default_rng(0).integers(0, 256, (3, size, size + 5 * (name == "pnet"), 3))
    bgr = pixels.astype(np.float32)
    rgb_norm = torch.from_numpy((bgr[..., ::-1].copy() - NORM_MEAN) * NORM_SCALE)
    with torch.no_grad():
        expected = [t.numpy() for t in load_network(name, weights_dir, fold=False)(rgb_norm)]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": bgr})
    return max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))


def export_network(name: str, net: nn.Module, out_path: Path) -> None:
    """Write ``net`` as ONNX: dynamic batch (and dynamic H, W for P-Net)."""
    if name == "pnet":
        example = torch.zeros(1, 64, 64, 3)
        input_axes = {0: "batch", 1: "height", 2: "width"}
        outputs = ["regression", "face_prob"]
        output_axes = {
            "regression": {0: "batch", 2: "out_height", 3: "out_width"},
            "face_prob": {0: "batch", 1: "out_height", 2: "out_width"},
        }
    else:
        size = CROP_SIZES[name]
        example = torch.zeros(2, size, size, 3)
        input_axes = {0: "batch"}
        outputs = ["regression", "landmarks", "face_prob"] if name == "onet" else ["regression", "face_prob"]
        output_axes = {out: {0: "batch"} for out in outputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
        torch.onnx.export(
            net,
            (example,),
            str(out_path),
            input_names=["image"],
            output_names=outputs,
            dynamic_axes={"image": input_axes, **output_axes},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def build_manifest(weights_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The manifest.json content: source, licence, layout and checksums of the exported files."""
    files: dict[str, Any] = {}
    for name in MODEL_NAMES:
        files[name] = {
            "file": f"{name}.onnx",
            "sha256": file_sha256(out_dir / f"{name}.onnx"),
            "source_weights": f"facenet_pytorch/data/{name}.pt",
            "source_sha256": file_sha256(weights_dir / f"{name}.pt"),
        }
    return {
        "name": "mtcnn",
        "source": "facenet-pytorch 2.6.0 wheel (https://github.com/timesler/facenet-pytorch), MIT licence",
        "licence": "MIT",
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "input": "image: (N, H, W, 3) float32 BGR pixel values in [0, 255]",
        "models": files,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="folder with pnet.pt, rnet.pt, onet.pt")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models", help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in MODEL_NAMES:
        export_network(name, load_network(name, args.weights), args.out / f"{name}.onnx")
    manifest = build_manifest(args.weights, args.out)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, entry in manifest["models"].items():
        diff = verify_export(name, args.weights, args.out / entry["file"])
        print(f"{name}: {entry['file']} sha256={entry['sha256']} max|onnx - torch|={diff:.2e}")


if __name__ == "__main__":
    main()
