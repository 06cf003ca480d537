"""A Redis lease that lets exactly one worker run a piece of work: the tracker stage (each camera's frames
in order) and each camera of the ingest (a camera read by two ingests would be counted twice).

``StageLease.acquire(stop, on_wait)`` blocks until this process owns the key ``<prefix>lease:<name>`` (SET NX
PX), logging once who holds it meanwhile and calling ``on_wait`` after each refusal (``try_acquire`` tries
once); ``keep(stop)`` starts a daemon thread that renews it every third of its time to live. A worker that
dies stops renewing, and the lease passes to a waiting worker after at most ``ttl_ms``. A worker that finds
its lease taken (it stalled longer than the time to live) sets ``lost``/``stop`` so that it finishes its work
in hand and stops instead of running beside its successor.

Renewal and release check the owner first under WATCH/MULTI/EXEC (no script: the least-privilege Redis user
of deploy/redis may not run EVAL), so a worker never extends or deletes a successor's lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from moodstream.common.streams import StreamNames, retry_forever

log = logging.getLogger(__name__)


def lease_key(names: StreamNames, stage: str) -> str:
    """Redis key of a single-worker lease (``stage``: a stage, or ``ingest:<store>/<camera>``)."""
    return f"{names.prefix}lease:{stage}"


class StageLease:
    """Single-worker lease of one stage, owned by ``owner`` (the worker's consumer name)."""

    def __init__(
        self, client: redis.Redis, url: str, names: StreamNames, stage: str, owner: str, ttl_ms: int = 10_000
    ) -> None:
        if not 1000 <= ttl_ms <= 600_000:
            raise ValueError(f"lease time to live: expected 1000 to 600000 ms, got {ttl_ms}")
        self.client = client
        self.url = url
        self.key = lease_key(names, stage)
        self.stage = stage
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.lost = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> str | None:
        """Owner of the lease now (None when free)."""
        value: Any = self.client.get(self.key)
        return value.decode() if value is not None else None

    def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours)."""
        if self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return self._if_ours(lambda pipe: pipe.pexpire(self.key, self.ttl_ms))

    def _if_ours(self, action: Callable[[Any], object]) -> bool:
        """Run ``action`` on a MULTI pipeline only while the key holds this owner (optimistic: WATCH, GET,
        MULTI ... EXEC, tried again when the key changed in between); False when it is not ours."""
        for _ in range(5):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.key)  # type: ignore[no-untyped-call]
                    value: Any = pipe.get(self.key)
                    if value is None or value.decode() != self.owner:
                        return False
                    pipe.multi()
                    action(pipe)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        return False

    def acquire(self, stop: threading.Event, on_wait: Callable[[], None] | None = None) -> bool:
        """Block until the lease is ours (True) or ``stop`` is set (False); one log line while waiting.

        ``on_wait`` is called after each answer from Redis that the lease is taken (a standby is healthy).
        """
        told = False
        while not stop.is_set():
            if retry_forever(self.try_acquire, what="Redis", url=self.url, stop=stop):
                if told:
                    log.info("%s lease taken over by %s", self.stage, self.owner)
                return True
            if on_wait is not None:
                on_wait()
            if not told:
                log.warning(
                    "another %s worker (%s) is running; this one waits: exactly one %s worker may run "
                    "(it needs each camera's frames in order); it takes over if that one stops",
                    self.stage,
                    self.holder() or "?",
                    self.stage,
                )
                told = True
            stop.wait(min(1.0, self.ttl_ms / 4000))
        return False

    def keep(self, stop: threading.Event) -> None:
        """Renew the lease in a daemon thread until ``stop``; on loss set ``lost`` and ``stop``."""

        def renew_loop() -> None:
            while not stop.wait(self.ttl_ms / 3000):
                try:
                    still = self._if_ours(lambda pipe: pipe.pexpire(self.key, self.ttl_ms))
                except redis.RedisError as exc:
                    log.warning("%s lease not renewed (%s); retrying", self.stage, type(exc).__name__)
                    continue
                if not still:
                    log.error("%s lease lost to %s: stopping this worker", self.stage, self.holder() or "?")
                    self.lost.set()
                    stop.set()
                    return

        self._thread = threading.Thread(target=renew_loop, name=f"{self.stage}-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Give the lease up (only if still ours), so a waiting worker starts at once."""
        with contextlib.suppress(redis.RedisError):
            self._if_ours(lambda pipe: pipe.delete(self.key))
