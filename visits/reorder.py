"""`ReorderWindow`: restores one camera's frame order from items arriving out of order.

Parallel detector workers finish frames out of order; the tracker needs them in order. Items are keyed
by the frame's own identity, (stream epoch, seq): seq counts up within an epoch (one ingest run of the
camera) and may have gaps (frames shed under load never arrive). The window holds items until the next
expected seq is there, or until the oldest held item waited ``max_wait_ms`` or more than ``max_frames``
are held; then it skips the gap. An item whose place was already passed is released at once, flagged
late (the caller counts it as a frame but does not track it). Time is the caller's clock (``now_ms``),
so the window is deterministic and testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from moodstream.visits.errors import ReorderError

T = TypeVar("T")

_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Released(Generic[T]):
    """An item leaving the window, in order unless ``late``.

    late: its position was already passed (an older epoch, or a seq below the next expected one);
    duplicate: the same (epoch, seq) is already held (a redelivery): acknowledge it, emit nothing;
    skipped: seqs given up on (never arrived) just before this item.
    """

    epoch: int
    seq: int
    item: T
    late: bool = False
    duplicate: bool = False
    skipped: int = 0


class ReorderWindow(Generic[T]):
    """Per-camera reorder buffer over (epoch, seq). Not thread-safe."""

    def __init__(self, max_frames: int, max_wait_ms: int) -> None:
        _check_int("max_frames", max_frames, 1, 1_000_000)
        _check_int("max_wait_ms", max_wait_ms, 0, 3_600_000)
        self.max_frames = max_frames
        self.max_wait_ms = max_wait_ms
        self.epoch: int | None = None
        self.next_seq: int | None = None  # None: not known yet (first epoch seen, maybe joined mid-way)
        self._held: dict[int, tuple[T, int]] = {}  # seq -> (item, arrival ms)

    def __len__(self) -> int:
        """Items held."""
        return len(self._held)

    def push(self, epoch: int, seq: int, item: T, now_ms: int) -> list[Released[T]]:
        """Add one item; returns what leaves the window now (possibly including it), in order."""
        _check_int("epoch", epoch)
        _check_int("seq", seq)
        _check_int("now_ms", now_ms)
        out: list[Released[T]] = []
        if self.epoch is not None and epoch < self.epoch:
            return [Released(epoch, seq, item, late=True)]
        if self.epoch is None or epoch > self.epoch:
            out.extend(self.flush())
            self.next_seq = None if self.epoch is None else 0  # a new ingest run counts from 0
            self.epoch = epoch
        if self.next_seq is not None and seq < self.next_seq:
            return [*out, Released(epoch, seq, item, late=True)]
        if seq in self._held:
            return [*out, Released(epoch, seq, item, duplicate=True)]
        self._held[seq] = (item, now_ms)
        out.extend(self._release(now_ms))
        return out

    def due(self, now_ms: int) -> list[Released[T]]:
        """Items released by the passing of time alone (call it on a timer between pushes)."""
        _check_int("now_ms", now_ms)
        return self._release(now_ms)

    def flush(self) -> list[Released[T]]:
        """Release everything held, in order, skipping gaps (shutdown, new epoch)."""
        out = []
        while self._held:
            out.extend(self._release_next(min(self._held)))
        return out

    def _release(self, now_ms: int) -> list[Released[T]]:
        out: list[Released[T]] = []
        while self._held:
            if self.next_seq is not None and self.next_seq in self._held:
                out.extend(self._release_next(self.next_seq))
                continue
            lowest = min(self._held)
            oldest_arrival = min(arrival for _, arrival in self._held.values())
            if (
                lowest == 0
                or len(self._held) > self.max_frames
                or now_ms - oldest_arrival >= self.max_wait_ms
            ):
                out.extend(self._release_next(lowest))
                continue
            break
        return out

    def _release_next(self, seq: int) -> list[Released[T]]:
        """Release held ``seq`` (the lowest held, or the next expected) and move past it."""
        item, _ = self._held.pop(seq)
        skipped = 0 if self.next_seq is None else seq - self.next_seq
        self.next_seq = seq + 1
        assert self.epoch is not None
        return [Released(self.epoch, seq, item, skipped=skipped)]


def _check_int(name: str, value: object, low: int = 0, high: int = _MAX_ID) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReorderError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
