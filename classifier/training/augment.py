"""Batch augmentation for (N, 1, H, W) float32 face tensors, on the training device.

Every random draw is made on ``x.device`` with ``gen`` (a generator on that device), so the same code
augments on the CPU and, batch-wide without Python loops over faces, on a GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    x: torch.Tensor, gen: torch.Generator, degrees: float, scale: float, shift: float
) -> torch.Tensor:
    """Random rotation (±degrees), zoom (1±scale), translation (±shift of the size) and horizontal flip."""
    n, dev = x.shape[0], x.device
    angle = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n, generator=gen, device=dev) * 2 - 1) * scale
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    tx, ty = ((torch.rand(2, n, generator=gen, device=dev) * 2 - 1) * shift * 2).unbind(0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(
    x: torch.Tensor, gen: torch.Generator, probability: float, max_fraction: float
) -> torch.Tensor:
    """Zero a random rectangle (1 to ``max_fraction`` of each side) in each image with ``probability``."""
    n, _, h, w = x.shape
    dev = x.device

    def span(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image (start, length) of the erased range along an axis of ``size`` pixels."""
        length = 1 + (torch.rand(n, generator=gen, device=dev) * int(size * max_fraction)).long()
        start = (torch.rand(n, generator=gen, device=dev) * (size - length + 1)).long()
        return start, length

    top, height = span(h)
    left, width = span(w)
    chosen = torch.rand(n, generator=gen, device=dev) < probability
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    inside_rows = (rows >= top[:, None, None]) & (rows < (top + height)[:, None, None])
    inside_cols = (cols >= left[:, None, None]) & (cols < (left + width)[:, None, None])
    mask = inside_rows & inside_cols & chosen[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def random_photometric(x: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """Random contrast and brightness change of ±strength (in normalised units)."""
    n, dev = x.shape[0], x.device
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * strength
    brightness = (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * strength
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast + mean + brightness


def random_resolution(
    x: torch.Tensor, gen: torch.Generator, probability: float, min_side: int, groups: int = 4
) -> torch.Tensor:
    """Shrink a random share of the faces to a random side in [min_side, H) and bring them back to H x H.

    What a small face in a camera frame becomes after the detector's crop is resized to 48 x 48. The batch
    is cut into ``groups`` slices, each slice with its own side (area down, bilinear up, as OpenCV does).
    """
    n, _, h, w = x.shape
    out = x.clone()
    chosen = torch.rand(n, generator=gen, device=x.device) < probability
    for part in torch.arange(n, device=x.device).chunk(groups):
        index = part[chosen[part]]
        if len(index) == 0:
            continue
        side = int(torch.randint(min_side, h, (1,), generator=gen, device=x.device))
        small = F.interpolate(x[index], size=(side, side * w // h), mode="area")
        out[index] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def random_blur(x: torch.Tensor, gen: torch.Generator, probability: float, max_sigma: float) -> torch.Tensor:
    """Gaussian blur (sigma up to ``max_sigma`` pixels, 5x5 kernel) of a random share of the faces."""
    n, dev = x.shape[0], x.device
    sigma = torch.rand(n, generator=gen, device=dev) * max_sigma + 1e-3
    sigma = torch.where(
        torch.rand(n, generator=gen, device=dev) < probability, sigma, torch.full_like(sigma, 1e-3)
    )
    taps = torch.arange(-2, 3, dtype=x.dtype, device=dev)
    kernel1d = torch.exp(-(taps[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    kernel1d = kernel1d / kernel1d.sum(1, keepdim=True)
    kernel = (kernel1d[:, :, None] * kernel1d[:, None, :]).unsqueeze(1)  # (N, 1, 5, 5)
    padded = F.pad(x.transpose(0, 1), (2, 2, 2, 2), mode="replicate")  # (1, N, H+4, W+4)
    return F.conv2d(padded, kernel, groups=n).transpose(0, 1)


def random_gamma_noise(x: torch.Tensor, gen: torch.Generator, gamma: float, noise: float) -> torch.Tensor:
    """Random gamma (exp of ±log(gamma)) on the 0-1 range and Gaussian sensor noise up to ``noise``."""
    n, dev = x.shape[0], x.device
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    unit = (x - lo) / (hi - lo + 1e-6)
    power = torch.exp((torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * math.log(gamma))
    unit = unit.clamp_min(0) ** power
    level = torch.rand(n, 1, 1, 1, generator=gen, device=dev) * noise
    unit = unit + torch.randn(x.shape, generator=gen, device=dev) * level
    return unit * (hi - lo) + lo


def augment(x: torch.Tensor, gen: torch.Generator, camera: bool = False) -> torch.Tensor:
    """The training augmentation: affine + flip, photometric jitter, random erasing.

    ``camera`` adds what store cameras do to a face: low resolution (16-47 px brought back to 48),
    blur, gamma and sensor noise, and a wider zoom (looser or tighter detector crops).
    """
    x = random_affine(x, gen, degrees=10.0, scale=0.15 if camera else 0.1, shift=0.08)
    if camera:
        x = random_resolution(x, gen, probability=0.4, min_side=16)
        x = random_blur(x, gen, probability=0.15, max_sigma=1.0)
        x = random_gamma_noise(x, gen, gamma=1.5, noise=0.03)
    x = random_photometric(x, gen, strength=0.2)
    return random_erase(x, gen, probability=0.5, max_fraction=0.4)
