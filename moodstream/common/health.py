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
    """Heartbeats and trouble of one process's loops (a process may run several, e.g. the aggregator's
    counts and losses workers: each is a ``source``)."""

    def __init__(self, stale_after_s: float = 60.0) -> None:
        if not 0 < stale_after_s <= 86_400:
            raise ValueError(f"stale_after_s: expected more than 0 and at most 86400 s, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._troubles: dict[str, str] = {}
        self._note = ""

    def beat(self, note: str = "", source: str = "main") -> None:
        """Loop ``source`` made progress with its servers just now; clears its trouble. ``note``: shown."""
        with self._lock:
            self._beats[source] = time.monotonic()
            self._troubles.pop(source, None)
            if note:
                self._note = note

    def trouble(self, reason: str, source: str = "main") -> None:
        """Loop ``source`` cannot reach a server (or go on): not ready until its next ``beat``."""
        with self._lock:
            self._troubles[source] = reason

    def readiness(self) -> Readiness:
        """Ready when every loop that ever beat did so within ``stale_after_s`` and none is in trouble."""
        now = time.monotonic()
        with self._lock:
            beats, troubles, note = dict(self._beats), dict(self._troubles), self._note
        oldest = max((now - beat for beat in beats.values()), default=None)
        if troubles:
            return Readiness(False, "; ".join(troubles[k] for k in sorted(troubles)), oldest)
        if oldest is None:
            return Readiness(False, "starting: no round trip with the servers yet", None)
        if oldest > self.stale_after_s:
            stale = sorted(k for k, beat in beats.items() if now - beat > self.stale_after_s)
            words = f"{', '.join(stale)}: no progress for {oldest:.0f} s (limit {self.stale_after_s:g} s)"
            return Readiness(False, words, oldest)
        return Readiness(True, note or "ready", oldest)
