"""Exceptions of the visits package."""

from __future__ import annotations


class VisitsError(ValueError):
    """An argument the tracker, gate or visit builder cannot work on; the message says what was expected."""


class ReorderError(VisitsError):
    """A frame identity (epoch, seq) or a reorder-window setting that is out of range."""
