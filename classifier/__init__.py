"""moodstream classifier stage: FER models on ONNX Runtime, described by manifests.

Public API: ``EmotionClassifier(ClassifierConfig(model="default"|NAME|PATH))`` with ``.input_size``,
``.color`` and ``.predict(crops) -> (N, 7) float32`` in ``moodstream.schemas.labels.EMOTIONS`` order;
``resolve_manifest_path`` / ``load_manifest`` (a model's manifest without loading it); ``evaluate_folder``.
Training and export live in ``.training`` / ``.export`` (the ``train`` extra).
"""

from moodstream.classifier.errors import ClassifierError, DatasetError, ManifestError, ModelFileError
from moodstream.classifier.evaluation import EvaluationResult, evaluate_folder, write_confusion_png
from moodstream.classifier.manifest import InputSpec, ModelManifest, load_manifest
from moodstream.classifier.registry import DEFAULT_MODEL, SHIPPED_MODELS, resolve_manifest_path
from moodstream.classifier.runner import ClassifierConfig, EmotionClassifier

__all__ = [
    "DEFAULT_MODEL",
    "SHIPPED_MODELS",
    "ClassifierConfig",
    "ClassifierError",
    "DatasetError",
    "EmotionClassifier",
    "EvaluationResult",
    "InputSpec",
    "ManifestError",
    "ModelFileError",
    "ModelManifest",
    "evaluate_folder",
    "load_manifest",
    "resolve_manifest_path",
    "write_confusion_png",
]
