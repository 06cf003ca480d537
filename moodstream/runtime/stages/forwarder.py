"""The forwarder stage (store-edge mode): a store's results -> the central Redis, never an image.

A store box runs ingest, detector, tracker and classifier against its own Redis. Its ``emotions`` entries
(per-frame counts and finished visits: no JPEG, no crop, see ``EmotionsMessage``) and its ``dead`` entries
(dead letters: the frame identity and a reason, never a payload) are what leaves the store; the forwarder
copies them, unchanged, onto the central Redis's ``emotions`` / ``dead`` streams, where the aggregator counts
them in PostgreSQL.

* At least once: a batch is written to the central Redis in one MULTI/EXEC, and only then acknowledged on
  the store's Redis (by the worker loop). A crash in between sends the batch again; the aggregator's
  frame-identity check (``applied_frames``) counts it once.
* Forwarded entries are deleted from the store's stream after their acknowledgement (XDEL, on the next
  batch or tick), so the store stream's length is exactly what still waits to be forwarded.
* WAN down: the worker loop retries the batch in hand every 2 s; results wait at the store. Each failed
  try checks the wait: beyond ``max_waiting`` entries the oldest unread ones are shed, each with a shed
  dead letter naming its frame (forwarded later like every dead letter), so the per-camera history stays
  exact: counted + dead + shed = published.
* Silent stores: each central write also sets ``<central prefix>edge:last_forward`` (hash store id ->
  epoch ms of the last forward); ``moodstream status`` on the central Redis lists the stores and how long
  each has been silent (``store_silence``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

from moodstream.common.streams import StreamNames
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import DeadLetter, frame_key_if_readable

log = logging.getLogger(__name__)

SHED_READ_LIMIT: Final[int] = 10_000
"""Most entries shed in one check (the next failed try sheds the rest)."""

CENTRAL_TRANSIENT: Final[tuple[type[BaseException], ...]] = (redis.ConnectionError, redis.TimeoutError)
"""Errors of the central Redis that mean "the link is down" (or the center is busy): the batch waits and is
tried again."""


class CentralBusyError(redis.ConnectionError):
    """The central aggregator lags by half the central stream's cap: results wait at the store (where they
    are bounded and counted) instead of being trimmed unread at the center."""


LAG_CHECK_INTERVAL_S: Final[float] = 1.0
"""Seconds between checks of the central consumer group's lag."""


def last_forward_key(names: StreamNames) -> str:
    """Hash on the central Redis: store id -> epoch ms of the store's last forwarded batch."""
    return f"{names.prefix}edge:last_forward"


def connect_central(url: str) -> redis.Redis:
    """A client of the central Redis with short timeouts: a WAN link that drops packets must fail a try in
    seconds (the batch waits and is retried), not hang the forwarder."""
    tcp = {} if url.startswith("unix://") else {"socket_keepalive": True}
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        **tcp,
    )


class ForwarderStage:
    """Copies one store stream's entries onto a central stream; see the module docstring."""

    stage = "forwarder"

    def __init__(
        self,
        local: redis.Redis,
        central: redis.Redis,
        names: StreamNames,
        central_names: StreamNames,
        *,
        source: str,
        target: str,
        group: str,
        central_group: str,
        central_maxlen: int,
        max_waiting: int | None,
    ) -> None:
        """``source``/``target``: stream keys on the store / central Redis; ``group``: the forwarder's group
        on ``source``; ``central_group``: the group that reads ``target`` (its lag holds the forwarder back);
        ``max_waiting``: entries that may wait at the store before the oldest are shed (None: never shed,
        for the dead stream)."""
        self.local = local
        self.central = central
        self.names = names
        self.central_names = central_names
        self.source = source
        self.target = target
        self.group = group
        self.central_group = central_group
        self.central_maxlen = central_maxlen
        self.max_waiting = max_waiting
        self.consumer = f"{self.stage}-shed"
        """Consumer name the shedding reads under (the runtime sets the worker's own)."""
        self._forwarded: list[str] = []
        self._next_lag_check = 0.0
        self.shed_total = 0

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Write the batch to the central Redis (raises a transient error while it is unreachable)."""
        self._delete_forwarded()
        sendable = [e for e in entries if e.fields]  # a trimmed entry (no payload) has nothing to forward
        stores: set[str] = set()
        cameras: list[tuple[str, str]] = []
        for entry in sendable:
            known = frame_key_if_readable(entry.fields)
            if known is not None:
                stores.add(known[0].store_id)
                cameras.append((known[0].store_id, known[0].camera_id))
        try:
            self._check_central_lag()
            self._write_central(sendable, stores)
        except redis.exceptions.OutOfMemoryError as exc:  # maxmemory + noeviction: wait, like a busy center
            self._shed_over_cap(counters)
            raise CentralBusyError(f"the central Redis refuses writes: {exc}") from exc
        except CENTRAL_TRANSIENT:
            self._shed_over_cap(counters)
            raise
        self._forwarded.extend(e.entry_id for e in entries)
        for store, camera in cameras:
            counters.add(store, camera, "frames_out")
        return BatchResult()

    def tick(self, now: float, counters: StageCounters) -> BatchResult:
        """Delete the entries forwarded (and acknowledged) since the last batch."""
        self._delete_forwarded()
        return BatchResult()

    def _check_central_lag(self) -> None:
        """CentralBusyError while the central group lags by half the central cap (Redis 7 reports the lag;
        on Redis 6.2, which does not, the check passes)."""
        if time.monotonic() < self._next_lag_check:
            return
        try:
            groups: Any = self.central.xinfo_groups(self.target)
        except redis.ResponseError:  # no stream yet
            groups = []
        self._next_lag_check = time.monotonic() + LAG_CHECK_INTERVAL_S
        for group in groups:
            name = group.get("name", b"")
            lag = group.get("lag")
            ours = (name.decode() if isinstance(name, bytes) else name) == self.central_group
            if ours and lag is not None and int(lag) >= self.central_maxlen // 2:
                self._next_lag_check = 0.0
                raise CentralBusyError(
                    f"the central {self.central_group} group lags by {int(lag)} entries "
                    f"(half the central cap {self.central_maxlen}); results wait at the store"
                )

    def _write_central(self, entries: Sequence[Entry], stores: set[str]) -> None:
        if not entries:
            return
        pipe = self.central.pipeline(transaction=True)
        for entry in entries:
            fields: Any = entry.fields
            pipe.xadd(self.target, fields, maxlen=self.central_maxlen, approximate=True)
        if stores:
            now_ms = int(time.time() * 1000)
            pipe.hset(last_forward_key(self.central_names), mapping=dict.fromkeys(sorted(stores), now_ms))
        pipe.execute()

    def _delete_forwarded(self) -> None:
        """XDEL forwarded entries; called only after the worker committed (acknowledged) them."""
        if not self._forwarded:
            return
        ids, self._forwarded = self._forwarded, []
        with contextlib.suppress(redis.RedisError):  # left in the stream: trimmed by its cap later
            self.local.xdel(self.source, *ids)

    def _shed_over_cap(self, counters: StageCounters) -> None:
        """While the link is down: shed the oldest unread entries beyond ``max_waiting``, each with a shed
        dead letter naming its frame."""
        if self.max_waiting is None:
            return
        try:
            over = int(self.local.xlen(self.source)) - self.max_waiting
            if over <= 0:
                return
            reply: Any = self.local.xreadgroup(
                self.group, self.consumer, {self.source: ">"}, count=min(over, SHED_READ_LIMIT)
            )
            items = [(i, f) for _s, batch in reply or [] for i, f in batch]
            if items:
                self._record_shed(items, counters)
        except redis.RedisError as exc:  # the store's own Redis: try again on the next failed forward
            log.warning("forwarder: could not shed over the cap: %s", exc)

    def _record_shed(self, items: list[tuple[bytes, dict[bytes, bytes]]], counters: StageCounters) -> None:
        now_ms = int(time.time() * 1000)
        pipe = self.local.pipeline(transaction=True)
        for entry_id, fields in items:
            known = frame_key_if_readable(fields or {})
            letter: Any = DeadLetter(
                source_stream=self.source,
                entry_id=entry_id.decode(),
                stage=self.stage,
                reason="shed: results waited at the store beyond the forwarder's cap while the central "
                "Redis was unreachable",
                deliveries=0,
                failed_ms=now_ms,
                loss="shed",
                key=known[0] if known else None,
                captured_ms=known[1] if known else None,
            ).encode()
            pipe.xadd(self.names.dead, letter, maxlen=100_000, approximate=True)
            if known is not None:
                counters.add(known[0].store_id, known[0].camera_id, "shed")
        ids = [entry_id for entry_id, _ in items]
        pipe.xack(self.source, self.group, *ids)
        pipe.xdel(self.source, *ids)
        pipe.execute()
        self.shed_total += len(items)
        log.warning(
            "forwarder: central Redis unreachable and %d results over the cap of %d: shed the oldest %d",
            self.shed_total,
            self.max_waiting,
            len(items),
        )


@dataclass(frozen=True)
class StoreSilence:
    """A store as the central Redis sees it: when its results last arrived."""

    store_id: str
    last_forward_ms: int
    silent_s: float


def store_silence(central: redis.Redis, names: StreamNames, now: float | None = None) -> list[StoreSilence]:
    """Every store that ever forwarded, longest silent first (read on the central Redis)."""
    raw: Any = central.hgetall(last_forward_key(names))
    at = time.time() if now is None else now
    rows = [StoreSilence(k.decode(), int(v), max(0.0, round(at - int(v) / 1000, 1))) for k, v in raw.items()]
    return sorted(rows, key=lambda r: (-r.silent_s, r.store_id))
