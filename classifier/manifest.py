"""The JSON manifest shipped beside every FER model: input, preprocessing, labels, provenance, accuracy.

A model ``models/foo.onnx`` is described by ``models/foo.json``. The classifier reads the manifest to
turn aligned face crops into the model's input tensor and to map the model's outputs onto
``moodstream.schemas.labels.EMOTIONS``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moodstream.classifier.errors import ManifestError
from moodstream.common.checksums import file_sha256
from moodstream.schemas.labels import EMOTIONS


class InputSpec(BaseModel):
    """How an aligned crop becomes the model input: x = (pixel / 255 - mean) / std, layout NCHW or NHWC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Name of the ONNX input tensor.")
    width: int = Field(ge=8, le=1024, description="Crop width in pixels.")
    height: int = Field(ge=8, le=1024, description="Crop height in pixels.")
    color: Literal["gray", "bgr", "rgb"] = Field(description="Colour mode of the crop the model expects.")
    layout: Literal["NCHW", "NHWC"] = Field(description="Axis order of the input tensor.")
    mean: float = Field(ge=-10.0, le=10.0, description="Subtracted after scaling pixels to [0, 1].")
    std: float = Field(gt=0.0, le=10.0, description="Divisor after subtracting mean.")
    crop_margin: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Context the aligned crop adds on every side, as a fraction of the FER-2013 framing "
        "(align_face's margin) -- the framing this model reads real camera faces best at, chosen on the "
        "in-the-wild check set (MODELS.md); 0 = the template framing.",
    )

    @property
    def channels(self) -> int:
        """1 for gray models, 3 for colour models."""
        return 1 if self.color == "gray" else 3


class Accuracy(BaseModel):
    """One measured accuracy of the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(
        min_length=1, description="Dataset and split, e.g. 'FER-2013 PublicTest (JPEG copy)'."
    )
    accuracy: float = Field(ge=0.0, le=1.0, description="Top-1 accuracy as a fraction.")
    samples: int = Field(ge=1, description="Number of images evaluated.")


class Calibration(BaseModel):
    """Temperature scaling applied inside the ONNX graph, and how well it calibrates the output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(
        gt=0.0, le=100.0, description="Logits are divided by this before the softmax (inside the graph)."
    )
    fitted_on: str = Field(min_length=1, description="Dataset split the temperature was fitted on.")
    samples: int = Field(ge=1, description="Images of that split used for the fit.")
    objective: str = Field(
        min_length=1, description="What the fit minimised, e.g. the NLL of the graph output."
    )
    ece_before: float = Field(ge=0.0, le=1.0, description="Expected calibration error (15 bins) at T = 1.")
    ece_after: float = Field(
        ge=0.0, le=1.0, description="Expected calibration error (15 bins) at the fitted T."
    )


CALIBRATED_SCHEMA_VERSION = 2
"""Manifests of this schema version declare a calibrated model: ``calibration`` is required."""


class ModelManifest(BaseModel):
    """Everything the runtime needs to know about one shipped FER model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(
        default=1,
        ge=1,
        le=CALIBRATED_SCHEMA_VERSION,
        description="1: plain model; 2: calibrated model whose manifest must carry ``calibration``.",
    )
    name: str = Field(min_length=1, max_length=100, description="Model name used in the registry.")
    file: str = Field(min_length=1, description="ONNX file name, relative to the manifest's folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the ONNX file.")
    input: InputSpec = Field(description="Input tensor and preprocessing.")
    output: Literal["probabilities", "logits"] = Field(
        description="Whether the model's (N, K) output is already softmax-ed or still logits."
    )
    labels: tuple[str, ...] = Field(description="Label of each output column, a permutation of EMOTIONS.")
    architecture: str = Field(min_length=1, description="Network family, e.g. 'mini-Xception'.")
    source: str = Field(min_length=1, description="Where the weights come from.")
    license: str = Field(min_length=1, description="Licence of the weights.")
    accuracy: tuple[Accuracy, ...] = Field(default=(), description="Measured accuracies.")
    calibration: Calibration | None = Field(
        default=None, description="Temperature scaling in the graph (schema_version 2 only)."
    )

    @field_validator("labels")
    @classmethod
    def _labels_are_emotions(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if sorted(labels) != sorted(EMOTIONS):
            raise ValueError(f"labels must be a permutation of {list(EMOTIONS)}, got {list(labels)}")
        return labels

    @model_validator(mode="after")
    def _calibration_matches_schema(self) -> ModelManifest:
        calibrated = self.schema_version >= CALIBRATED_SCHEMA_VERSION
        if calibrated and self.calibration is None:
            raise ValueError(
                f"schema_version {self.schema_version} declares a calibrated model but the manifest has no "
                "calibration block {temperature, fitted_on, samples, objective, ece_before, ece_after}"
            )
        if not calibrated and self.calibration is not None:
            raise ValueError(
                f"calibration needs schema_version {CALIBRATED_SCHEMA_VERSION}; "
                f"the manifest declares {self.schema_version}"
            )
        return self

    def to_emotions_order(self) -> list[int]:
        """Column index in the model output for each label of EMOTIONS, in EMOTIONS order."""
        return [self.labels.index(e) for e in EMOTIONS]


sha256_of = file_sha256
"""Old name of ``moodstream.common.checksums.file_sha256``, kept while other branches still import it."""


def load_manifest(path: Path) -> ModelManifest:
    """Parse and validate a manifest JSON file; raises ManifestError naming the file and the problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"model manifest not found: {path}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"model manifest {path} is not readable JSON: {exc}") from exc
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ManifestError(f"model manifest {path} is invalid: {problems}") from exc


def with_accuracy(manifest: ModelManifest, entry: Accuracy) -> ModelManifest:
    """``manifest`` with ``entry`` recorded, replacing any entry of the same dataset label."""
    kept = tuple(a for a in manifest.accuracy if a.dataset != entry.dataset)
    return manifest.model_copy(update={"accuracy": (*kept, entry)})


def write_manifest(manifest: ModelManifest, path: Path) -> None:
    """Write a manifest as indented JSON (what export scripts ship)."""
    path.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
