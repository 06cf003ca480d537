"""Decoding a batch of stream entries into typed messages, keeping the unreadable ones as dead letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from moodstream.runtime.worker import Entry
from moodstream.schemas.messages import MessageError

M = TypeVar("M")


def decode_all(
    entries: Sequence[Entry], decode: Callable[[Mapping[bytes, bytes]], M], kind: str
) -> tuple[list[tuple[Entry, M]], list[tuple[Entry, str]]]:
    """Entries -> (entry, message) pairs decoded by ``decode`` (e.g. ``FrameMessage.decode``), and
    (entry, reason) pairs for entries that are not a well-formed ``kind`` message."""
    good: list[tuple[Entry, M]] = []
    dead: list[tuple[Entry, str]] = []
    for entry in entries:
        try:
            good.append((entry, decode(entry.fields)))
        except MessageError as exc:
            dead.append((entry, f"malformed {kind} entry: {exc}"))
    return good, dead
