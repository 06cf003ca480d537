"""Configuration of the MTCNN face detector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.providers import DEFAULT_PROVIDERS, ProviderChoice
from moodstream.schemas import defaults

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class DetectorConfig(BaseModel):
    """Parameters of `FaceDetector`. Defaults are the reference MTCNN (facenet-pytorch) parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_face_size: int = Field(
        default=defaults.MIN_FACE_SIZE,
        ge=12,
        le=4096,
        description="Smallest face side, in pixels of the (possibly downscaled) frame, that the image "
        "pyramid looks for; smaller is slower.",
    )
    scale_factor: float = Field(
        default=0.709,
        gt=0.1,
        lt=0.95,
        description="Ratio between consecutive image-pyramid scales; closer to 1 finds more sizes, slower.",
    )
    thresholds: tuple[Probability, Probability, Probability] = Field(
        default=(0.6, 0.7, 0.7),
        description="Face-probability thresholds of P-Net, R-Net and O-Net, each in (0, 1).",
    )
    max_input_width: int | None = Field(
        default=defaults.MAX_INPUT_WIDTH,
        ge=32,
        le=16384,
        description="Frames wider than this are downscaled to this width before detection; boxes and "
        "landmarks are mapped back to the original frame. None: detect at full resolution.",
    )
    providers: ProviderChoice = DEFAULT_PROVIDERS
    intra_op_threads: int = Field(
        default=defaults.MODEL_INTRA_OP_THREADS,
        ge=0,
        le=256,
        description="Threads ONNX Runtime uses inside one network run; 0 lets ONNX Runtime choose.",
    )
    frame_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads, the calling one included, that share out the frames of one detect call "
        "(each runs the three stages on its frames); a call with fewer frames than workers shares out its "
        "pyramid levels and R-Net/O-Net runs instead. With intra_op_threads=1 this spreads the work over "
        "that many cores.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder with pnet.onnx, rnet.onnx, onet.onnx (and optionally manifest.json whose "
        "checksums are verified). None: the models shipped in detector/models.",
    )
    crop_batch: int = Field(
        default=16,
        ge=1,
        le=65536,
        description="Face candidates (of all frames of a call) per R-Net run; O-Net runs take a quarter "
        "of this (at least 1). Small runs keep activations in CPU cache (16 is fastest on CPU); raise it "
        "for GPU providers.",
    )
    pnet_tile_pixels: int = Field(
        default=40_000,
        ge=4_096,
        le=100_000_000,
        description="Input pixels per P-Net run: small pyramid levels of several frames are batched up to "
        "this, large ones split into exact horizontal strips. Raise it for GPU providers.",
    )
