"""Errors shared by several stages, so callers can catch one type whatever stage raised it."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model file (ONNX network or its manifest) is unknown, missing, corrupt, or does not match the
    checksum in its manifest. The detector and the classifier raise subclasses of this one, so
    ``except moodstream.common.errors.ModelFileError`` catches both."""
