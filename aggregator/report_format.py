"""Cell formatting shared by the report renderers (text tables and HTML), and making names from the
database safe to show: no control characters for a terminal, no formulas for a spreadsheet."""

from __future__ import annotations

import re
from typing import Final

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


_UNSAFE_CHARS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 control characters (escape sequences, carriage returns, bells) and the bidirectional
overrides that reorder what a terminal shows."""

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (``=HYPERLINK(...)``)."""


def plain_text(value: str) -> str:
    """``value`` with every control character and bidirectional override removed (safe for a terminal)."""
    return _UNSAFE_CHARS.sub("", value)


def csv_text(value: str) -> str:
    """A text cell for CSV: control characters removed and, when it would start a formula, a leading
    apostrophe (spreadsheets then show it as text). Numbers are never passed here (``-0.25`` stays)."""
    cleaned = plain_text(value)
    return f"'{cleaned}" if cleaned.startswith(FORMULA_STARTS) else cleaned
