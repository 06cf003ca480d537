"""moodstream classifier stage: FER models on ONNX Runtime, described by manifests.

Public API: ``EmotionClassifier(ClassifierConfig(model="default"|NAME|PATH))`` with ``.input_size``,
``.color`` and ``.predict(crops) -> (N, 7) float32`` in ``moodstream.schemas.labels.EMOTIONS`` order.
Training and export live in ``.training`` / ``.export`` (the ``train`` extra).
"""

from moodstream.classifier.errors import ClassifierError, DatasetError, ManifestError, ModelFileError
from moodstream.classifier.registry import DEFAULT_MODEL, SHIPPED_MODELS
from moodstream.classifier.runner import ClassifierConfig, EmotionClassifier

__all__ = [
    "DEFAULT_MODEL",
    "SHIPPED_MODELS",
    "ClassifierConfig",
    "ClassifierError",
    "DatasetError",
    "EmotionClassifier",
    "ManifestError",
    "ModelFileError",
]
