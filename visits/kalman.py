"""Constant-velocity Kalman filter over face boxes, batched over tracks, with prediction in capture time.

State of one track: (8,) float64 ``[cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels and pixels per second);
covariance (8, 8). A batch of T tracks is ``means`` (T, 8) and ``covs`` (T, 8, 8). Measurements are
boxes as ``[cx, cy, w, h]`` (M, 4). Noises scale with each box's height, so one setting fits faces of
every size. Process noise is the white-noise-acceleration model, so it grows with the time step
(a track unseen for a second is much less certain than one seen 100 ms ago).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Size (w, h) changes this much slower than position, relative to the motion noise.
SIZE_NOISE_RATIO = 0.25
_EYE8 = np.eye(8)
_EYE4 = np.eye(4)


@dataclass(frozen=True, slots=True)
class MotionNoise:
    """Noise levels in box sides: accel (per s^2), measurement (fraction), initial speed (per s)."""

    accel: float
    measurement: float
    initial_speed: float


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) float64 cx, cy, w, h."""
    boxes = boxes.astype(np.float64, copy=False)
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + size / 2.0, size], axis=1)


def measurements_to_boxes(means: np.ndarray) -> np.ndarray:
    """(T, >=4) cx, cy, w, h, ... -> (T, 4) x1, y1, x2, y2."""
    half = np.maximum(means[:, 2:4], 0.0) / 2.0
    return np.concatenate([means[:, :2] - half, means[:, :2] + half], axis=1)


def _side(means: np.ndarray) -> np.ndarray:
    """(T,) the box height used to scale noises (at least 1 px)."""
    return np.maximum(means[:, 3], 1.0)


def measurement_cov(heights: np.ndarray, noise: MotionNoise) -> np.ndarray:
    """(T, 4, 4) diagonal measurement covariance for boxes of these heights (T,)."""
    std = noise.measurement * np.maximum(heights, 1.0)
    return _EYE4[None] * (std**2)[:, None, None]


def initiate(measurements: np.ndarray, noise: MotionNoise) -> tuple[np.ndarray, np.ndarray]:
    """New tracks at rest: (M, 4) cx, cy, w, h -> means (M, 8), covs (M, 8, 8)."""
    count = len(measurements)
    means = np.zeros((count, 8))
    means[:, :4] = measurements
    side = _side(means)
    pos = noise.measurement * side
    vel = noise.initial_speed * side
    stds = np.stack([pos, pos, pos, pos, vel, vel, SIZE_NOISE_RATIO * vel, SIZE_NOISE_RATIO * vel], axis=1)
    return means, np.eye(8)[None] * (stds**2)[:, :, None]


def predict(
    means: np.ndarray, covs: np.ndarray, dt: np.ndarray, max_extrapolation: float, noise: MotionNoise
) -> tuple[np.ndarray, np.ndarray]:
    """Predict each track ``dt`` seconds (T,) ahead; returns new (means, covs), inputs unchanged.

    Motion is extrapolated, and the uncertainty grows, for at most ``max_extrapolation`` seconds: a
    hidden person is neither carried across the frame nor given a reach that takes in everyone.
    """
    dt = np.minimum(np.maximum(dt, 0.0), max_extrapolation)
    transition = np.repeat(_EYE8[None], len(means), axis=0)
    idx = np.arange(4)
    transition[:, idx, idx + 4] = dt[:, None]
    new_means = means.copy()
    new_means[:, :4] += means[:, 4:] * dt[:, None]
    new_covs = transition @ covs @ transition.transpose(0, 2, 1)
    q_pos = (noise.accel * _side(means)) ** 2
    q = np.stack([q_pos, q_pos, q_pos * SIZE_NOISE_RATIO**2, q_pos * SIZE_NOISE_RATIO**2], axis=1)  # (T, 4)
    dt3, dt2 = (dt**3 / 3.0)[:, None] * q, (dt**2 / 2.0)[:, None] * q
    new_covs[:, idx, idx] += dt3
    new_covs[:, idx, idx + 4] += dt2
    new_covs[:, idx + 4, idx] += dt2
    new_covs[:, idx + 4, idx + 4] += dt[:, None] * q
    return new_means, new_covs


def update(
    means: np.ndarray, covs: np.ndarray, measurements: np.ndarray, noise: MotionNoise
) -> tuple[np.ndarray, np.ndarray]:
    """Correct predicted tracks (M, 8)/(M, 8, 8) with their matched measurements (M, 4)."""
    innovation_cov = covs[:, :4, :4] + measurement_cov(measurements[:, 3], noise)
    gain = covs[:, :, :4] @ np.linalg.inv(innovation_cov)  # (M, 8, 4)
    residual = measurements - means[:, :4]
    new_means = means + np.einsum("mij,mj->mi", gain, residual)
    new_covs = covs - gain @ covs[:, :4, :]
    return new_means, new_covs


def distances(
    means: np.ndarray, covs: np.ndarray, measurements: np.ndarray, noise: MotionNoise
) -> np.ndarray:
    """(T, N) Mahalanobis distance between each predicted track's box (centre and size) and each
    measured box, under the track's predicted uncertainty plus the measurement noise."""
    innovation_cov = covs[:, :4, :4] + measurement_cov(means[:, 3], noise)
    inverse = np.linalg.inv(innovation_cov)  # (T, 4, 4)
    residual = measurements[None, :, :] - means[:, None, :4]  # (T, N, 4)
    squared = np.einsum("tni,tij,tnj->tn", residual, inverse, residual)
    return np.sqrt(np.maximum(squared, 0.0))
