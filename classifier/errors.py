"""Named errors of the classifier stage."""

from __future__ import annotations


class ClassifierError(ValueError):
    """Bad input to the classifier (crop shape, dtype, values, configuration)."""


class ManifestError(ClassifierError):
    """A model manifest is missing, malformed, or does not match its ONNX model."""


class ModelFileError(ClassifierError):
    """A model name or path does not lead to a usable model file."""


class DatasetError(ValueError):
    """A dataset folder or csv file does not have the expected FER-2013 layout."""
