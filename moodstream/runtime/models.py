"""The model factory: the detector and classifier objects a process needs, built once at worker start
from one ``AnalysisConfig`` and wrapped in a ``FrameAnalyzer``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moodstream.runtime.frame_analysis import CropSpec, FrameAnalyzer


class AnalysisConfig(BaseModel):
    """Models and their knobs used by the detector and classifier stages and by ``analyze``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="default", min_length=1, description="FER model: default, a name or a path.")
    min_face_size: int = Field(default=20, ge=12, le=4096, description="Smallest face side searched (px).")
    max_input_width: int | None = Field(
        default=None, ge=32, le=16384, description="Downscale wider frames to this width before detection."
    )
    crop_margin: float = Field(default=0.0, ge=0.0, le=1.0, description="Context around faces when aligning.")
    intra_op_threads: int = Field(
        default=0, ge=0, le=256, description="ONNX Runtime threads (0: its choice)."
    )
    providers: Literal["auto", "cpu"] = Field(
        default="auto", description="auto (GPU when present) or cpu only."
    )


def _providers(config: AnalysisConfig) -> Literal["auto"] | list[str]:
    return "auto" if config.providers == "auto" else ["CPUExecutionProvider"]


def crop_spec_for_model(model: str, margin: float = 0.0) -> CropSpec:
    """The crop a FER model expects, read from its manifest (no model is loaded)."""
    from moodstream.classifier import load_manifest, resolve_manifest_path

    spec = load_manifest(resolve_manifest_path(model)).input
    return CropSpec(width=spec.width, height=spec.height, color=spec.color, margin=margin)


def build_analyzer(config: AnalysisConfig, *, detect: bool = True, classify: bool = True) -> FrameAnalyzer:
    """Create the models a process needs (once, at worker start) and wrap them in a FrameAnalyzer."""
    crop = crop_spec_for_model(config.model, config.crop_margin)
    face_detector = align = emotion_classifier = None
    if detect:
        from moodstream.detector import DetectorConfig, FaceDetector, align_face

        face_detector = FaceDetector(
            DetectorConfig(
                min_face_size=config.min_face_size,
                max_input_width=config.max_input_width,
                providers=_providers(config),
                intra_op_threads=config.intra_op_threads,
            )
        )
        align = align_face
    if classify:
        from moodstream.classifier import ClassifierConfig, EmotionClassifier

        emotion_classifier = EmotionClassifier(
            ClassifierConfig(
                model=config.model, providers=_providers(config), intra_op_threads=config.intra_op_threads
            )
        )
    return FrameAnalyzer(face_detector, align, emotion_classifier, crop)  # type: ignore[arg-type]
