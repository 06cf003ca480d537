"""Settings of the visits core.

The per-camera settings (`VisitConfig` with its `GateConfig` and `TrackerConfig`) are part of the contract
and live in ``moodstream.schemas.visit_config`` (stores.yaml carries them); they are re-exported here.
`MotionConfig` holds the tracker's motion-model knobs, which are not per-camera settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from moodstream.schemas.visit_config import GateConfig, ReorderConfig, TrackerConfig, VisitConfig

__all__ = ["GateConfig", "MotionConfig", "ReorderConfig", "TrackerConfig", "VisitConfig"]


class MotionConfig(BaseModel):
    """The motion model and association knobs of `FaceTracker` (Kalman prediction in capture time, IoU
    plus Mahalanobis matching). Not in stores.yaml: the defaults were chosen on bench/bench_tracking.py's
    scenes at 2-10 fps; the per-camera knobs (gap, confirmation) are in `TrackerConfig`.

    Distances and noises are in box sides (the face box's height), so the same settings work for small
    and large faces; times are in seconds of capture time, so they hold at any sampled rate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Detector score from which a box is matched in the first pass and may start a track; "
        "boxes below it are only used to continue existing tracks (second pass).",
    )
    min_iou: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="Least IoU between a track's predicted box and a box for an overlap match "
        "(preferred over a distance match).",
    )
    max_distance: float = Field(
        default=3.0,
        gt=0.0,
        le=20.0,
        description="Distance gate, in standard deviations of the predicted box (Mahalanobis distance of "
        "centre and size): boxes within it may match without overlapping (people move far between frames "
        "at low rates); also the unit of the distance part of the matching cost.",
    )
    max_size_ratio: float = Field(
        default=1.6,
        gt=1.0,
        le=10.0,
        description="Largest ratio between a box's height and the track's predicted height for any match.",
    )
    motion_noise: float = Field(
        default=2.0,
        gt=0.0,
        le=100.0,
        description="Standard deviation of the acceleration, in box sides per second squared (white-noise "
        "acceleration model); higher follows sudden turns, lower keeps tracks steadier.",
    )
    measurement_noise: float = Field(
        default=0.08,
        gt=0.0,
        le=1.0,
        description="Standard deviation of a detected box's centre and size, as a fraction of its side.",
    )
    initial_speed: float = Field(
        default=3.0,
        gt=0.0,
        le=100.0,
        description="Standard deviation of a new track's unknown speed, in box sides per second "
        "(sets how far a track's second observation may be from its first).",
    )
    max_extrapolation_seconds: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="A track unseen for longer is predicted to stay where this much motion took it "
        "(its uncertainty keeps growing): a hidden person is not extrapolated across the frame.",
    )
