"""Exceptions of the detector package."""

from __future__ import annotations

from moodstream.common.errors import ModelFileError as _CommonModelFileError


class DetectorError(ValueError):
    """A frame or argument the detector cannot work on; the message says what was expected."""


class ModelFileError(DetectorError, _CommonModelFileError):
    """A model file of the detector is missing, corrupt or does not match its manifest checksum (a
    ``moodstream.common.errors.ModelFileError``, like the classifier's)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"detector model file {path}: {reason}")
        self.path = path
        self.reason = reason
