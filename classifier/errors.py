"""Named errors of the classifier stage."""

from __future__ import annotations

from moodstream.common.errors import ModelFileError as _CommonModelFileError


class ClassifierError(ValueError):
    """Bad input to the classifier (crop shape, dtype, values, configuration)."""


class ManifestError(ClassifierError, _CommonModelFileError):
    """A model manifest is missing, malformed, or does not match its ONNX model (also a
    ``moodstream.common.errors.ModelFileError``)."""


class ModelFileError(ClassifierError, _CommonModelFileError):
    """A model name or path does not lead to a usable model file (a
    ``moodstream.common.errors.ModelFileError``, like the detector's)."""


class DatasetError(ValueError):
    """A dataset folder or csv file does not have the expected FER-2013 layout."""
