"""VGG-Face / VGG16 topology (13 conv + 3 FC) adapted to 48x48 gray FER-2013 faces, width-reduced for CPU.

Layout as VGG16: five blocks of 2, 2, 3, 3, 3 3x3 convolutions (each followed by batch norm and ReLU,
which VGG16 lacks but which lets it train from scratch), a 2x2 max pool after each block (48 -> 1), then
three fully connected layers (two hidden of ``fc_width`` with dropout, one to the 7 classes).
Channel widths are VGG16's 64, 128, 256, 512, 512 scaled by ``width / 64``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moodstream.classifier.training.config import FUSIONS, Fusion

BLOCKS: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (4, 3), (8, 3), (8, 3))
"""(width multiplier, number of 3x3 convolutions) for each of VGG16's five blocks."""


class CropStandardize(nn.Module):
    """Per-crop photometric normalisation: each face to zero mean and unit standard deviation.

    (N, C, H, W) float32 -> the same shape. Any positive affine change of a crop's pixels (a flat, grey,
    low-contrast camera face versus a high-contrast FER-2013 one) gives the same output, so the network
    sees camera crops and training faces on one scale. ``eps`` keeps a blank crop finite (all zeros).
    """

    def __init__(self, eps: float = 1e-2) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W) standardised per sample."""
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        centred = x - mean
        std = torch.sqrt((centred * centred).mean(dim=(1, 2, 3), keepdim=True) + self.eps * self.eps)
        return centred / std


class VggFer(nn.Module):
    """(N, 1, 48, 48) float32 normalised faces -> (N, classes) logits.

    With ``standardize`` the first layer is :class:`CropStandardize`, so the graph itself normalises
    each crop (and whatever affine input scaling the manifest declares cancels out).
    """

    def __init__(
        self,
        width: int = 16,
        fc_width: int = 256,
        dropout: float = 0.5,
        classes: int = 7,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [CropStandardize()] if standardize else []
        channels = 1
        for multiplier, convs in BLOCKS:
            out = width * multiplier
            for _ in range(convs):
                layers += [
                    nn.Conv2d(channels, out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                ]
                channels = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 48, 48) -> (N, classes) logits."""
        logits: torch.Tensor = self.classifier(self.features(x))
        return logits


class Probabilities(nn.Module):
    """Export wrapper: logits -> softmax(logits / temperature), optionally averaged with the mirrored face,
    and averaged over the networks of an ensemble.

    With ``flip_tta`` the faces and their mirror images go through each network as one batch of 2N (one
    pass, cheaper at batch 1 than two). With several networks (an ensemble of separately trained runs on
    the same input) their logits are stacked: M networks x V views = M*V rows of N. ``fusion``
    "probabilities" divides every row by the temperature, applies the softmax and takes the mean over
    the M*V rows; "logits" takes the mean of the M*V rows' logits first, then one division by the
    temperature and one softmax.
    """

    def __init__(
        self,
        net: nn.Module | Sequence[nn.Module],
        flip_tta: bool,
        temperature: float = 1.0,
        fusion: Fusion = "probabilities",
    ) -> None:
        super().__init__()
        members = [net] if isinstance(net, nn.Module) else list(net)
        if not members:
            raise ValueError("Probabilities needs at least one network")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.net = members[0]
        self.others = nn.ModuleList(members[1:])
        self.flip_tta = flip_tta
        self.temperature = temperature
        self.fusion = fusion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) normalised faces -> (N, classes) probabilities."""
        views = torch.cat([x, torch.flip(x, dims=[3])]) if self.flip_tta else x
        logits = self.net(views)
        if len(self.others):
            logits = torch.cat([logits, *(other(views) for other in self.others)])
        if not self.flip_tta and not len(self.others):
            return torch.softmax(logits / self.temperature, dim=1)
        if self.fusion == "logits":
            fused = logits.reshape(-1, x.shape[0], logits.shape[1]).mean(dim=0)
            return torch.softmax(fused / self.temperature, dim=1)
        each = torch.softmax(logits / self.temperature, dim=1)
        return each.reshape(-1, x.shape[0], each.shape[1]).mean(dim=0)
