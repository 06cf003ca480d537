"""Configuration of the face tracker, the face-quality gate and the visit builder (strict pydantic models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrackerConfig(BaseModel):
    """Knobs of `FaceTracker`: a motion-only tracker (Kalman prediction in time + two-tier association).

    Distances and noises are in box sides (the face box's height), so the same settings work for small
    and large faces; times are in seconds of capture time, so they hold at any sampled rate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_gap_seconds: float = Field(
        default=3.0,
        gt=0.0,
        le=600.0,
        description="How long a track survives unseen (capture time). Longer than the sampling interval and "
        "than a short occlusion (a person hidden 1 s stays one visit), much shorter than a return "
        "(a person back after a minute is a new visit).",
    )
    min_frames: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Observations before a track counts as a visit; a track that misses a frame before it "
        "has them is dropped (keeps one-frame false detections out of the visit counts).",
    )
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


class GateConfig(BaseModel):
    """Knobs of `QualityGate`: which detected faces are readable enough to vote for their visit's emotion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_face_size: float = Field(
        default=32.0,
        ge=8.0,
        le=4096.0,
        description="Shortest side of the face box, in frame pixels, for a readable face. The emotion "
        "model's accuracy falls fast below 32 px and small faces skew towards 'sad' (issue 11's table).",
    )
    min_score: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Least detector score for a readable face.",
    )
    min_sharpness: float = Field(
        default=0.12,
        ge=0.0,
        le=10.0,
        description="Least sharpness of the aligned crop: standard deviation of its Laplacian divided by "
        "the crop's own standard deviation (contrast-free). Sharp FER-2013 faces score about 0.9, real "
        "video faces 0.2-0.4, faces blurred by a 1.6 px Gaussian 0.14 (where accuracy falls below 40%); "
        "0 disables the check.",
    )
    max_yaw: float = Field(
        default=0.35,
        gt=0.0,
        le=2.0,
        description="Largest head turn: the nose's sideways offset from the eyes' midpoint, along the eye "
        "line, divided by the eye distance (0 frontal, about 0.27 at 30 degrees, 0.5 at 45 degrees). "
        "Emotion accuracy falls from 66% (below 0.1) to about 55% (0.2-0.5).",
    )


class VisitConfig(BaseModel):
    """Settings of one camera's `VisitBuilder`: tracker, gate and how many votes a visit keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Face tracker settings.")
    gate: GateConfig = Field(default_factory=GateConfig, description="Face-quality gate settings.")
    max_votes: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Most readable faces of one visit sent to the classifier (the best by quality), so "
        "classifier work stays bounded however long a person lingers.",
    )
