"""Configuration of the MTCNN face detector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detector.providers import PROVIDERS

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class DetectorConfig(BaseModel):
    """Parameters of `FaceDetector`. Defaults are the reference MTCNN (facenet-pytorch) parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_face_size: int = Field(
        default=20,
        ge=12,
        le=4096,
        description="Smallest face side, in pixels of the (possibly downscaled) frame, that the pyramid looks for.",
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
        default=None,
        ge=32,
        le=16384,
        description="Frames wider than this are downscaled to this width before detection; boxes and "
        "landmarks are mapped back to the original frame. None: detect at full resolution.",
    )
    providers: Literal["auto"] | list[str] = Field(
        default="auto",
        description="ONNX Runtime execution providers: 'auto' (TensorRT, then CUDA, then CPU, from what is "
        f"installed) or an ordered list of names from {sorted(PROVIDERS)}.",
    )
    intra_op_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Threads ONNX Runtime uses inside one network run; 0 lets ONNX Runtime choose.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder with pnet.onnx, rnet.onnx, onet.onnx (and optionally manifest.json whose "
        "checksums are verified). None: the models shipped in detector/models.",
    )
    max_batch_crops: int = Field(
        default=2048,
        ge=1,
        le=65536,
        description="Most face candidates sent to R-Net / O-Net in one run (bounds memory).",
    )

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: Literal["auto"] | list[str]) -> Literal["auto"] | list[str]:
        if value == "auto":
            return value
        if not value:
            raise ValueError("providers must be 'auto' or a non-empty list")
        unknown = [name for name in value if name not in PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider(s) {unknown}; expected names from {sorted(PROVIDERS)}")
        return value
