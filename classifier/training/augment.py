"""Batch augmentation for (N, 1, H, W) float32 face tensors, on the training device."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    x: torch.Tensor, gen: torch.Generator, degrees: float, scale: float, shift: float
) -> torch.Tensor:
    """Random rotation (±degrees), zoom (1±scale), translation (±shift of the size) and horizontal flip."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n, generator=gen) * 2 - 1) * scale
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = ((torch.rand(2, n, generator=gen) * 2 - 1) * shift * 2).unbind(0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(
    x: torch.Tensor, gen: torch.Generator, probability: float, max_fraction: float
) -> torch.Tensor:
    """Zero a random rectangle (up to ``max_fraction`` of each side) in each image with ``probability``."""
    n, _, h, w = x.shape
    out = x.clone()
    chosen = torch.nonzero(torch.rand(n, generator=gen) < probability).flatten().tolist()
    for i in chosen:
        eh = int(1 + torch.randint(int(h * max_fraction), (1,), generator=gen))
        ew = int(1 + torch.randint(int(w * max_fraction), (1,), generator=gen))
        top = int(torch.randint(h - eh + 1, (1,), generator=gen))
        left = int(torch.randint(w - ew + 1, (1,), generator=gen))
        out[i, :, top : top + eh, left : left + ew] = 0.0
    return out


def random_photometric(x: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """Random contrast and brightness change of ±strength (in normalised units)."""
    n = x.shape[0]
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * strength
    brightness = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * strength
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast + mean + brightness


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The training augmentation: affine + flip, photometric jitter, random erasing."""
    x = random_affine(x, gen, degrees=10.0, scale=0.1, shift=0.08)
    x = random_photometric(x, gen, strength=0.2)
    return random_erase(x, gen, probability=0.5, max_fraction=0.4)
