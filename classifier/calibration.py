"""Probability calibration: expected calibration error and temperature scaling (numpy only).

The shipped VGG graph computes ``p = mean over views v of softmax(z_v / T)`` where ``z_v`` are the
network's logits for the face and (with flip TTA) its mirror image. ``fit_temperature`` chooses ``T`` to
minimise the negative log-likelihood of exactly those probabilities, the ones a deployer receives.
"""

from __future__ import annotations

import math

import numpy as np

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error."""
TEMPERATURE_RANGE = (0.05, 20.0)
"""Temperatures searched by ``fit_temperature``."""
TEMPERATURE_METADATA_KEY = "moodstream.temperature"
"""ONNX ``metadata_props`` key holding the temperature the graph applies (repr of a float)."""


def _check_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> None:
    if probabilities.ndim != 2 or len(probabilities) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"expected (N, K) probabilities and (N,) labels with N >= 1, got {probabilities.shape} "
            f"and {labels.shape}"
        )


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of (N, K) probabilities against (N,) int labels: sum over bins of |accuracy - confidence| * share.

    Confidence is the top probability; bins split [0, 1] into ``bins`` equal widths (right-closed, the
    first one also holds 0).
    """
    _check_probabilities(probabilities, labels)
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += abs(correct[members].mean() - confidence[members].mean()) * members.mean()
    return float(total)


def tempered_probabilities(views: np.ndarray, temperature: float) -> np.ndarray:
    """(V, N, K) logits of V views (the face, its mirror) -> (N, K) mean of softmax(logits / T)."""
    scaled = views.astype(np.float64) / temperature
    scaled -= scaled.max(axis=2, keepdims=True)
    exp = np.exp(scaled)
    result: np.ndarray = (exp / exp.sum(axis=2, keepdims=True)).mean(axis=0)
    return result


def objective_wording(networks: int, flip_tta: bool, fusion: str = "probabilities") -> str:
    """The manifest's wording of what a temperature was fitted to (``calibration.objective``), for a graph
    of ``networks`` networks, with or without face-and-mirror views, fusing them by ``fusion``
    ("probabilities": mean of the softmaxes; "logits": softmax of the mean logits)."""
    rows = [f"{networks} networks"] if networks > 1 else []
    rows += ["views (face, mirror)"] if flip_tta else []
    if not rows:
        return "NLL of the graph output: softmax(logits / T)"
    what = " and ".join(rows)
    if fusion == "logits":
        return f"NLL of the graph output: softmax(mean over {what} of logits / T)"
    return f"NLL of the graph output: mean over {what} of softmax(logits / T)"


def fuse_logit_views(views: np.ndarray) -> np.ndarray:
    """(V, N, K) logits of V views (and networks) -> (1, N, K): their mean, the one view a graph that
    fuses logits before its temperature and softmax divides by T (``tempered_probabilities`` of it is
    softmax(mean logits / T))."""
    if views.ndim != 3:
        raise ValueError(f"expected (V, N, K) logits, got shape {views.shape}")
    fused: np.ndarray = views.mean(axis=0, keepdims=True)
    return fused


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class) of (N, K) probabilities (clipped at 1e-12)."""
    _check_probabilities(probabilities, labels)
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def fit_temperature(views: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the NLL of ``tempered_probabilities(views, T)`` on (N,) labels.

    views: (V, N, K) logits. A log-spaced grid over TEMPERATURE_RANGE, then golden-section refinement
    between the grid neighbours of the best point (to about 1e-5 relative).
    """
    if views.ndim != 3:
        raise ValueError(f"expected (V, N, K) logits, got shape {views.shape}")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(tempered_probabilities(views, math.exp(log_t)), labels)

    grid = np.linspace(math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1]), 61)
    best = int(np.argmin([loss(float(g)) for g in grid]))
    low, high = float(grid[max(best - 1, 0)]), float(grid[min(best + 1, len(grid) - 1)])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    while high - low > 1e-5:
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2.0)
