"""Liveness and readiness of one process, as orchestrators probe them (``/healthz``, ``/readyz``).

A stage's loop calls ``HealthState.beat()`` each time it completed a round trip with its servers (a
batch, a heartbeat, a camera-state update), and ``trouble(reason)`` when a server is unreachable. The
process is *ready* when its last beat is more recent than ``stale_after_s`` and no trouble was reported
since; it is *alive* as long as its HTTP server answers (the loop itself is watched by readiness, so that
a stuck loop takes the process out of service without a restart storm). Thread-safe; no I/O.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    """A readiness verdict: ready or not, and why (one line, no secret)."""

    ready: bool
    reason: str
    last_beat_age_s: float | None


class HealthState:
    """Heartbeat and trouble of one process's main loop."""

    def __init__(self, stale_after_s: float = 60.0) -> None:
        if not 0 < stale_after_s <= 86_400:
            raise ValueError(f"stale_after_s: expected more than 0 and at most 86400 s, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._trouble: str | None = None
        self._note = "starting"

    def beat(self, note: str = "") -> None:
        """The loop made progress with its servers just now; clears any trouble. ``note``: state shown."""
        with self._lock:
            self._last_beat = time.monotonic()
            self._trouble = None
            if note:
                self._note = note

    def trouble(self, reason: str) -> None:
        """A server is unreachable (or the loop cannot go on): not ready until the next ``beat``."""
        with self._lock:
            self._trouble = reason

    def readiness(self) -> Readiness:
        """Ready when the last beat is younger than ``stale_after_s`` and no trouble came after it."""
        with self._lock:
            beat, trouble, note = self._last_beat, self._trouble, self._note
        age = None if beat is None else time.monotonic() - beat
        if trouble is not None:
            return Readiness(False, trouble, age)
        if age is None:
            return Readiness(False, "starting: no round trip with the servers yet", None)
        if age > self.stale_after_s:
            return Readiness(False, f"no progress for {age:.0f} s (limit {self.stale_after_s:g} s)", age)
        return Readiness(True, note or "ready", age)
