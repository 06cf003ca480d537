"""moodstream classifier stage: FER models on ONNX Runtime, described by manifests.

Public API: ``EmotionClassifier(ClassifierConfig(model="default"|NAME|PATH))`` with ``.input_size``,
``.color`` and ``.predict(crops) -> (N, 7) float32`` in ``moodstream.schemas.labels.EMOTIONS`` order;
``resolve_manifest_path`` / ``load_manifest`` (a model's manifest without loading it); ``evaluate_folder``.
Training and export live in ``.training`` / ``.export`` (the ``train`` extra).
"""

from moodstream.classifier.errors import ClassifierError, DatasetError, ManifestError, ModelFileError
from moodstream.classifier.evaluation import (
    EvaluationResult,
    evaluate_folder,
    evaluate_images,
    write_confusion_png,
)
from moodstream.classifier.manifest import InputSpec, ModelManifest, load_manifest
from moodstream.classifier.registry import DEFAULT_MODEL, SHIPPED_MODELS, resolve_manifest_path
from moodstream.classifier.runner import ClassifierConfig, EmotionClassifier
from moodstream.classifier.wild import (
    SHARED_DATA,
    WILD_LABELS,
    Aligner,
    load_wild_labels,
    missing_files,
    wild_crops,
    wild_files,
)

__all__ = [
    "DEFAULT_MODEL",
    "SHARED_DATA",
    "SHIPPED_MODELS",
    "WILD_LABELS",
    "Aligner",
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
    "evaluate_images",
    "load_manifest",
    "load_wild_labels",
    "missing_files",
    "resolve_manifest_path",
    "wild_crops",
    "wild_files",
    "write_confusion_png",
]
