"""Settings of visits: the per-camera face tracker, the face-quality gate and the per-visit votes.

These models are part of the contract: ``stores.yaml`` carries them (``pipeline.visits`` for every camera,
``cameras[].visits`` to override single keys of one camera), the tracker stage (``moodstream.visits``) runs on
them, and ``moodstream analyze`` uses the same ones, so the same frames give the same visits everywhere.
Each default is stated here once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateConfig(_Strict):
    """Which faces are readable enough to vote for their visit's emotion (others are counted, not read)."""

    min_face_size: int = Field(
        default=32,
        ge=12,
        le=1024,
        description="Smallest face side in frame pixels (sqrt of the box area) that may vote; smaller faces "
        "are tracked and counted but abstain (the emotion model's accuracy falls steeply below ~24-32 px).",
    )
    min_score: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Smallest detector (O-Net) score of a face that may vote."
    )
    min_sharpness: float = Field(
        default=0.12,
        ge=0.0,
        le=10.0,
        description="Smallest sharpness of the aligned crop: standard deviation of its Laplacian over the "
        "crop's own standard deviation. FER-2013 faces score about 0.9, faces in video frames 0.2-0.4, a "
        "1.6 px Gaussian blur 0.14 (where accuracy falls below 40%); 0 turns the blur check off.",
    )
    max_yaw: float = Field(
        default=0.35,
        ge=0.0,
        le=2.0,
        description="Largest head turn from the landmarks: the nose's offset from the eyes' midpoint along "
        "the eye line over the eye distance (0 = frontal, about 0.27 at 30 degrees, 0.5 at 45). Emotion "
        "accuracy falls from 66% (below 0.1) to about 55% (0.2-0.5).",
    )


class TrackerConfig(_Strict):
    """Motion-only tracking of faces in one camera (Kalman prediction, IoU association, no appearance)."""

    max_gap_seconds: float = Field(
        default=3.0,
        gt=0.0,
        le=120.0,
        description="How long a track survives unseen (hidden, occluded, missed) before its visit ends.",
    )
    min_frames: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Frames a track must be seen in before it counts as a visit (keeps one-frame false "
        "detections out).",
    )


class VisitConfig(_Strict):
    """Everything that turns one camera's faces into visits."""

    gate: GateConfig = Field(default_factory=GateConfig, description="The face-quality gate.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="The face tracker.")
    max_votes: int = Field(
        default=5,
        ge=1,
        le=64,
        description="Most readable faces of one visit that are classified (the best ones by quality); the "
        "visit's emotion is the mean of their probabilities.",
    )


class ReorderConfig(_Strict):
    """The tracker stage's per-camera reorder window (detector workers finish out of order)."""

    max_frames: int = Field(
        default=32, ge=1, le=10_000, description="Most frames of one camera held while waiting for a gap."
    )
    max_wait_seconds: float = Field(
        default=3.0,
        gt=0.0,
        le=600.0,
        description="Longest a frame is held waiting for an earlier one (shed frames never arrive).",
    )
    idle_flush_seconds: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="A camera with no new frame for this long has its open visits ended and counted.",
    )
