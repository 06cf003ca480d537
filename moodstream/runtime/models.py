"""The model factory: the detector and classifier objects a process needs, built once at worker start
from one ``AnalysisConfig`` and wrapped in a ``FrameAnalyzer``.

``AnalysisConfig`` is the pipeline's view of the two model configs: each knob it shares with
``DetectorConfig`` / ``ClassifierConfig`` has the same default (``moodstream.schemas.defaults``), except
``intra_op_threads`` (see ``PIPELINE_INTRA_OP_THREADS``). The stage packages (and ONNX Runtime) are imported
only when models are built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.providers import DEFAULT_PROVIDERS, ProviderChoice
from moodstream.runtime.frame_analysis import CropSpec, FrameAnalyzer
from moodstream.schemas import defaults

if TYPE_CHECKING:
    from moodstream.classifier import ClassifierConfig
    from moodstream.detector import DetectorConfig

PIPELINE_INTRA_OP_THREADS: Final[int] = 1
"""ONNX Runtime threads per model process in the pipeline: one, because the pipeline scales by running
several model processes side by side (``--detectors``); a lone model object (``DetectorConfig``,
``ClassifierConfig``) defaults to 0, ONNX Runtime's own choice of every core."""


class AnalysisConfig(BaseModel):
    """Models and their knobs used by the detector and classifier stages and by ``analyze``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=defaults.FER_MODEL, min_length=1, description="FER model: default, a name or a path."
    )
    min_face_size: int = Field(
        default=defaults.MIN_FACE_SIZE, ge=12, le=4096, description="Smallest face side searched (px)."
    )
    max_input_width: int | None = Field(
        default=defaults.MAX_INPUT_WIDTH,
        ge=32,
        le=16384,
        description="Downscale wider frames to this width before detection.",
    )
    crop_margin: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Context around faces when aligning (align_face margin); None: the model's own "
        "(its manifest's input.crop_margin).",
    )
    intra_op_threads: int = Field(
        default=PIPELINE_INTRA_OP_THREADS,
        ge=0,
        le=256,
        description="ONNX Runtime threads per model process (0: its choice).",
    )
    providers: ProviderChoice = DEFAULT_PROVIDERS


def crop_spec_for_model(model: str, margin: float | None = None) -> CropSpec:
    """The crop a FER model expects, read from its manifest (no model is loaded); ``margin`` None: the
    manifest's ``crop_margin``, a number overrides it."""
    from moodstream.classifier import load_manifest, resolve_manifest_path

    spec = load_manifest(resolve_manifest_path(model)).input
    chosen = spec.crop_margin if margin is None else margin
    return CropSpec(width=spec.width, height=spec.height, color=spec.color, margin=chosen)


def detector_config(config: AnalysisConfig) -> DetectorConfig:
    """The detector's own config for the pipeline's analysis knobs (validated)."""
    from moodstream.detector import DetectorConfig

    return DetectorConfig.model_validate(
        {
            "min_face_size": config.min_face_size,
            "max_input_width": config.max_input_width,
            "providers": config.providers,
            "intra_op_threads": config.intra_op_threads,
        }
    )


def classifier_config(config: AnalysisConfig) -> ClassifierConfig:
    """The classifier's own config for the pipeline's analysis knobs (validated)."""
    from moodstream.classifier import ClassifierConfig

    return ClassifierConfig.model_validate(
        {"model": config.model, "providers": config.providers, "intra_op_threads": config.intra_op_threads}
    )


def build_analyzer(config: AnalysisConfig, *, detect: bool = True, classify: bool = True) -> FrameAnalyzer:
    """Create the models a process needs (once, at worker start) and wrap them in a FrameAnalyzer."""
    crop = crop_spec_for_model(config.model, config.crop_margin)
    face_detector = align = emotion_classifier = None
    if detect:
        from moodstream.detector import FaceDetector, align_face

        face_detector = FaceDetector(detector_config(config))
        align = align_face
    if classify:
        from moodstream.classifier import EmotionClassifier

        emotion_classifier = EmotionClassifier(classifier_config(config))
    return FrameAnalyzer(face_detector, align, emotion_classifier, crop)
