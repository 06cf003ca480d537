"""EmotionClassifier: aligned face crops -> probabilities over the 7 FER-2013 emotions, on ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

from moodstream.classifier.calibration import TEMPERATURE_METADATA_KEY
from moodstream.classifier.errors import ClassifierError, ManifestError
from moodstream.classifier.manifest import ModelManifest, load_manifest
from moodstream.classifier.preprocess import crops_to_tensor
from moodstream.classifier.providers import choose_providers
from moodstream.classifier.registry import resolve_manifest_path
from moodstream.common.checksums import file_sha256
from moodstream.common.providers import DEFAULT_PROVIDERS, ProviderChoice
from moodstream.schemas import defaults
from moodstream.schemas.labels import EMOTIONS


class ClassifierConfig(BaseModel):
    """Which FER model to run and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=defaults.FER_MODEL,
        min_length=1,
        description='"default", a shipped model name (moodstream.classifier.registry) or a path to a '
        "model .json/.onnx.",
    )
    batch_size: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Most crops sent to ONNX Runtime at once; bigger batches are split.",
    )
    providers: ProviderChoice = DEFAULT_PROVIDERS
    intra_op_threads: int = Field(
        default=defaults.MODEL_INTRA_OP_THREADS,
        ge=0,
        le=256,
        description="ONNX Runtime intra-op threads; 0 lets ONNX Runtime decide.",
    )
    verify_checksum: bool = Field(
        default=True, description="Check the ONNX file's SHA-256 against the manifest before loading."
    )


class EmotionClassifier:
    """Runs one FER model described by a manifest; loads the ONNX session on construction.

    ``predict(crops)`` takes what ``align_face(frame, face, size=self.input_size, color=self.color,
    margin=self.crop_margin)``
    returns: uint8 (H, W) gray / (H, W, 1) or (H, W, 3) colour crops (float32 in [0, 255] also accepted),
    and returns (N, 7) float32 probabilities in ``moodstream.schemas.labels.EMOTIONS`` order.
    """

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        manifest_path = resolve_manifest_path(self.config.model)
        self.manifest: ModelManifest = load_manifest(manifest_path)
        model_path = manifest_path.parent / self.manifest.file
        self._session = _open_session(model_path, self.manifest, self.config)
        _check_calibration(self._session, self.manifest, manifest_path, model_path)
        self._columns = self.manifest.to_emotions_order()

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the crops this model expects."""
        return self.manifest.input.width, self.manifest.input.height

    @property
    def color(self) -> Literal["gray", "bgr", "rgb"]:
        """Colour mode of the crops this model expects."""
        return self.manifest.input.color

    @property
    def crop_margin(self) -> float:
        """The ``align_face`` margin this model reads real faces best at (its manifest's ``crop_margin``)."""
        return self.manifest.input.crop_margin

    @property
    def providers(self) -> list[str]:
        """Execution providers of the loaded session, in priority order."""
        return list(self._session.get_providers())

    def predict(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Crops -> (N, 7) float32 probabilities in EMOTIONS order; an empty batch gives shape (0, 7)."""
        count = len(crops)
        if count == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        parts = [
            self._run(crops[i : i + self.config.batch_size]) for i in range(0, count, self.config.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def _run(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        tensor = crops_to_tensor(crops, self.manifest.input)
        (raw,) = self._session.run(None, {self.manifest.input.name: tensor})
        scores = np.asarray(raw, dtype=np.float32).reshape(len(tensor), -1)
        if scores.shape[1] != len(self.manifest.labels):
            raise ManifestError(
                f"model {self.manifest.name!r} returned {scores.shape[1]} scores per face; "
                f"its manifest lists {len(self.manifest.labels)} labels"
            )
        if self.manifest.output == "logits":
            scores = _softmax(scores)
        if not np.all(np.isfinite(scores)):
            raise ClassifierError(f"model {self.manifest.name!r} produced non-finite probabilities")
        return np.ascontiguousarray(scores[:, self._columns], dtype=np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) float32."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def _open_session(path: Path, manifest: ModelManifest, config: ClassifierConfig) -> ort.InferenceSession:
    """Verify the ONNX file against its manifest and open an ONNX Runtime session."""
    if not path.is_file():
        raise ManifestError(f"model file {path} named by manifest {manifest.name!r} does not exist")
    if config.verify_checksum and file_sha256(path) != manifest.sha256:
        raise ManifestError(
            f"model file {path} does not match the sha256 in its manifest (corrupt or replaced?)"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: the classifier shares the cores with the detector and
    # the stage's own numpy work, and spinning workers doubled its CPU per face at batch 1 (MODELS.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), options, providers=choose_providers(config.providers))
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, ClassifierError):
            raise
        raise ManifestError(f"model file {path} could not be loaded by ONNX Runtime: {exc}") from exc
    _check_io(session, manifest)
    return session


def _check_calibration(
    session: ort.InferenceSession, manifest: ModelManifest, manifest_path: Path, path: Path
) -> None:
    """Raise ManifestError when the manifest's temperature differs from the one the graph declares."""
    declared = session.get_modelmeta().custom_metadata_map.get(TEMPERATURE_METADATA_KEY)
    calibration = manifest.calibration
    if calibration is None:
        if declared is not None:
            raise ManifestError(
                f"model file {path} applies temperature {declared} (metadata {TEMPERATURE_METADATA_KEY!r}) "
                f"but manifest {manifest_path} declares no calibration (schema_version 2 with a "
                "calibration block expected)"
            )
        return
    try:
        graph_temperature = float(declared) if declared is not None else None
    except ValueError:
        graph_temperature = None
    if graph_temperature is None or abs(graph_temperature - calibration.temperature) > 1e-6 * max(
        1.0, calibration.temperature
    ):
        raise ManifestError(
            f"manifest {manifest_path} states temperature {calibration.temperature} but model file {path} "
            f"declares {declared!r} in its metadata {TEMPERATURE_METADATA_KEY!r}: manifest and graph disagree"
        )


def _check_io(session: ort.InferenceSession, manifest: ModelManifest) -> None:
    """Raise ManifestError when the session's input/output shapes contradict the manifest."""
    spec = manifest.input
    inputs = {i.name: i for i in session.get_inputs()}
    if spec.name not in inputs:
        raise ManifestError(
            f"manifest {manifest.name!r} names input {spec.name!r}; the model has {list(inputs)}"
        )
    shape = inputs[spec.name].shape
    if spec.layout == "NCHW":
        expected = [spec.channels, spec.height, spec.width]
    else:
        expected = [spec.height, spec.width, spec.channels]
    if len(shape) != 4 or any(
        isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True)
    ):
        raise ManifestError(
            f"manifest {manifest.name!r} describes input {spec.layout} {expected} "
            f"({spec.width}x{spec.height} {spec.color}); the model's input is shaped {shape}"
        )
    out_shape = session.get_outputs()[0].shape
    if isinstance(out_shape[-1], int) and out_shape[-1] != len(manifest.labels):
        raise ManifestError(
            f"manifest {manifest.name!r} lists {len(manifest.labels)} labels; the model outputs {out_shape}"
        )
