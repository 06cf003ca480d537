"""Cell formatting shared by the report renderers (text tables and HTML)."""

from __future__ import annotations

NO_VALUE = "–"
"""Shown where a share, index or mean has no value (no readable visit, no classified face)."""


def fmt_index(value: float | None) -> str:
    """Satisfaction index with sign and 3 decimals (``+0.125``), or NO_VALUE."""
    return NO_VALUE if value is None else f"{value:+.3f}"


def fmt_share(value: float | None) -> str:
    """Share in [0, 1] as a percentage with one decimal (``12.5%``), or NO_VALUE."""
    return NO_VALUE if value is None else f"{100 * value:.1f}%"


def fmt_seconds(value: float | None) -> str:
    """A duration: ``42 s`` under two minutes, ``3.5 min`` from there on, or NO_VALUE."""
    if value is None:
        return NO_VALUE
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
