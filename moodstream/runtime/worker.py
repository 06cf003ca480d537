"""The consumer loop every stage worker runs: read a batch, handle it, write outputs, acknowledge.

One ``StreamWorker`` reads one stream in one consumer group (XREADGROUP COUNT/BLOCK). A
``BatchHandler`` turns the batch into output entries (one per input frame) and dead letters; the worker
then writes outputs, dead letters, counters and the XACK of the whole batch in ONE Redis transaction
(MULTI/EXEC), so an entry is acknowledged only once its output exists. Handlers that write elsewhere
(the aggregator commits to PostgreSQL) do so inside ``handle`` before returning.

On start and every ``claim_interval_s`` the worker reclaims entries idle longer than ``claim_idle_ms``
(XAUTOCLAIM) from crashed consumers; an entry delivered more than ``max_deliveries`` times goes to the
``dead`` stream with its reason instead of blocking the group. Transient server errors (Redis or
PostgreSQL unreachable) make the worker wait and retry the batch in hand, with a log line, never crash.
``stop`` (set by SIGTERM/SIGINT) is checked between batches: the batch in hand is finished first.

Holding: a stateful handler (the tracker, which restores each camera's frame order) may keep entries of a
batch un-acknowledged (``BatchResult.held``) and acknowledge them with a later batch or tick
(``BatchResult.released``). Held entries stay pending in Redis, so a crash loses nothing accepted; the worker
keeps them fresh (XCLAIM JUSTID to itself, which does not count a delivery) so reclaim passes leave them
alone. A handler with a ``tick(now, counters)`` method is called every ``tick_interval_s`` (also while no
entry arrives) to release what waited long enough.

Backpressure: the output stream is never trimmed by length (no MAXLEN). Before each read or reclaim the
worker checks its length; at ``output_maxlen`` it deletes the entries every group acknowledged and, while
the rest (the backlog of the next stage) is still at the cap, reads nothing: its own input then fills, and
so on up to the ``frames`` stream, whose cap the ingest accounts as shed per camera. So no stage loses an
entry its consumers have not acknowledged (``counted + dead + shed = published`` holds at every hop); a
stream exceeds its cap by at most one batch per writing worker (and the tracker's releases). Dead letters
are never trimmed either: the ingest waits for room before it adds shed letters, the stages add few.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.health import HealthState
from moodstream.common.redaction import redact_text
from moodstream.common.streams import (
    ServerUnavailable,
    StreamNames,
    ensure_group,
    retry_forever,
    trim_acknowledged,
)
from moodstream.runtime.database import TransactionConflictError
from moodstream.runtime.metrics import PipelineMetrics, StageCounters
from moodstream.schemas import defaults
from moodstream.schemas.messages import DeadLetter, Fields, frame_key_if_readable

log = logging.getLogger(__name__)


class WorkerConfig(BaseModel):
    """Tuning of a stage worker's consumer loop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(default=8, ge=1, le=1024, description="Entries read per XREADGROUP (COUNT).")
    block_ms: int = Field(default=500, ge=10, le=60_000, description="XREADGROUP BLOCK in milliseconds.")
    claim_idle_ms: int = Field(
        default=defaults.RECLAIM_IDLE_SECONDS * 1000,
        ge=50,
        le=86_400_000,
        description="Idle time after which a pending entry is reclaimed.",
    )
    claim_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="Seconds between reclaim passes (XAUTOCLAIM)."
    )
    max_deliveries: int = Field(
        default=defaults.MAX_DELIVERIES,
        ge=1,
        le=1000,
        description="Deliveries after which an entry goes to the dead stream.",
    )
    heartbeat_s: float = Field(default=2.0, gt=0, le=600, description="Seconds between heartbeats.")
    output_maxlen: int = Field(
        default=defaults.STREAM_MAXLEN,
        ge=10,
        le=10_000_000,
        description="Cap of the output stream's backlog (entries the next stage has not acknowledged): at "
        "the cap this worker reads nothing until the next stage catches up (backpressure, never a trim).",
    )
    dead_maxlen: int = Field(
        default=defaults.DEAD_MAXLEN,
        ge=10,
        le=10_000_000,
        description="Cap of the dead stream's backlog; the ingest waits for room before adding shed letters.",
    )
    tick_interval_s: float = Field(
        default=0.25, gt=0, le=60, description="Seconds between tick calls of a handler that has tick()."
    )
    claim_all_on_start: bool = Field(
        default=False,
        description="Take over every pending entry of the group at start, however briefly idle (only for a "
        "stage that runs exactly one worker, like the tracker: its predecessor's entries come first).",
    )


@dataclass
class Entry:
    """One stream entry handed to a handler; ``deliveries`` counts this delivery too."""

    entry_id: str
    fields: Fields
    deliveries: int = 1


@dataclass
class BatchResult:
    """What a handler made of a batch: output field maps (one per good input) and given-up entries.

    ``held``: ids of entries of THIS batch to leave un-acknowledged (pending) for now; ``released``: ids of
    entries held earlier that are acknowledged with this commit (their outputs are in ``outputs``).
    """

    outputs: list[Fields] = field(default_factory=list)
    dead: list[tuple[Entry, str]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


class BatchHandler(Protocol):
    """A stage's work: ``handle`` a batch of entries (may raise; the batch is then retried).

    A handler may also define ``tick(now: float, counters: StageCounters) -> BatchResult`` (``now``:
    ``time.time()``), called every ``tick_interval_s``; its result is committed like a batch's (outputs, dead,
    released ids).
    """

    stage: str

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Process entries; return outputs and dead entries; count per camera on ``counters``."""
        ...


def consumer_name(stage: str) -> str:
    """A unique consumer name: stage, host, pid and a random suffix."""
    return f"{stage}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StreamWorker:
    """Consumer loop of one stage; ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        client: redis.Redis,
        redis_url: str,
        names: StreamNames,
        *,
        stream: str,
        group: str,
        handler: BatchHandler,
        output_stream: str | None,
        config: WorkerConfig,
        metrics: PipelineMetrics | None = None,
        transient: tuple[type[BaseException], ...] = (),
        consumer: str | None = None,
        health: HealthState | None = None,
    ) -> None:
        self.client = client
        self.redis_url = redis_url
        self.names = names
        self.stream = stream
        self.group = group
        self.handler = handler
        self.output_stream = output_stream
        self.config = config
        self.metrics = metrics
        self.health = health
        """Told of every round trip with the servers (``beat``) and of outages (``trouble``): ``/readyz``."""
        self.transient: tuple[type[BaseException], ...] = (
            redis.ConnectionError,
            redis.TimeoutError,
            *transient,
        )
        self.consumer = consumer or consumer_name(handler.stage)
        self.counters = StageCounters(handler.stage, names, metrics)
        self.processed = 0
        self._last_errors: dict[str, str] = {}
        self._claim_cursor = "0-0"
        self._started = time.time()
        self.held: set[str] = set()
        """Ids of entries the handler holds (pending, delivered to this consumer, not yet acknowledged)."""
        self.backpressured = False
        """True while the output stream's backlog is at its cap (this worker reads nothing)."""

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is always finished (or left pending)."""
        next_claim = 0.0
        next_beat = 0.0
        next_tick = 0.0
        try:
            self._redis(lambda: ensure_group(self.client, self.stream, self.group), stop)
            stage = self.handler.stage
            log.info("%s worker %s reading %s (group %s)", stage, self.consumer, self.stream, self.group)
            if self.config.claim_all_on_start:
                self._take_over(stop)
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self._redis(self._heartbeat, stop)
                    self._beat()
                    next_beat = now + self.config.heartbeat_s
                if self._redis(self._output_full, stop):
                    self.tick(stop)
                    stop.wait(self.config.block_ms / 1000)
                    continue
                batch: list[Entry] = []
                if now >= next_claim:
                    self._redis(self._touch_held, stop)
                    batch = self._redis(self._claim, stop)
                    full = len(batch) >= self.config.batch_size
                    more = full or self._claim_cursor != "0-0"  # the pending list is not scanned through yet
                    next_claim = now if more else now + self.config.claim_interval_s
                if not batch:
                    batch = self._redis(self._read_new, stop)
                if batch:
                    self.process_batch(batch, stop)
                if time.monotonic() >= next_tick:
                    self.tick(stop)
                    next_tick = time.monotonic() + self.config.tick_interval_s
        except ServerUnavailable as exc:
            log.warning("%s worker %s stopping: %s", self.handler.stage, self.consumer, exc)
        finally:
            self._leave()

    def _redis(self, action: Any, stop: threading.Event) -> Any:
        """Run a Redis action, waiting out outages; a group lost with its stream (e.g. a Redis restarted
        without its data) is recreated and the action retried."""

        def attempt() -> Any:
            try:
                return action()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._trouble(f"Redis unreachable ({type(exc).__name__})")
                raise
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise  # UNBLOCKED: the stream was deleted while this worker waited on it
                log.warning(
                    "%s: group %s on %s is gone; recreating it", self.handler.stage, self.group, self.stream
                )
                ensure_group(self.client, self.stream, self.group)
                return action()

        return retry_forever(attempt, what="Redis", url=self.redis_url, stop=stop)

    def _output_full(self) -> bool:
        """Whether the output stream's backlog is at ``output_maxlen`` (acknowledged entries trimmed first);
        logs when this worker starts and stops waiting for the next stage."""
        if self.output_stream is None:
            return False
        backlog = int(self.client.xlen(self.output_stream))
        if backlog >= self.config.output_maxlen:  # entries stay up to the cap, acknowledged or not
            backlog = trim_acknowledged(self.client, self.output_stream)
        full = backlog >= self.config.output_maxlen
        if full != self.backpressured:
            stage = self.handler.stage
            if full:
                log.warning(
                    "%s: %s holds %d entries the next stage has not acknowledged (cap %d); reading nothing "
                    "until it catches up (backpressure)",
                    stage,
                    self.output_stream,
                    backlog,
                    self.config.output_maxlen,
                )
            else:
                log.info(
                    "%s: %s below its cap again (%d entries); reading", stage, self.output_stream, backlog
                )
            self.backpressured = full
        return full

    def _read_new(self) -> list[Entry]:
        block = self.config.block_ms
        if hasattr(self.handler, "tick"):  # wake up in time for the next tick
            block = max(10, min(block, int(self.config.tick_interval_s * 1000)))
        reply: Any = self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.config.batch_size,
            block=block,
        )
        entries: list[Entry] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                entries.append(Entry(_text(entry_id), dict(fields or {}), 1))
        return entries

    def _take_over(self, stop: threading.Event) -> None:
        """Handle every entry pending in the group (a predecessor's), however short its idle time, first."""
        self._claim_cursor = "0-0"
        taken = 0
        while not stop.is_set():
            batch = self._redis(lambda: self._claim(min_idle_ms=0), stop)
            if batch:
                taken += len(batch)
                self.process_batch(batch, stop)
            if self._claim_cursor == "0-0":
                break
        if taken:
            log.info("%s worker %s took over %d pending entries", self.handler.stage, self.consumer, taken)

    def _touch_held(self) -> None:
        """Reset the idle time of held entries (XCLAIM JUSTID to this consumer does not count a delivery),
        so that no reclaim pass, this worker's included, takes them while they are held."""
        if not self.held:
            return
        ids: list[Any] = sorted(self.held)
        for start in range(0, len(ids), 500):
            self.client.xclaim(
                self.stream, self.group, self.consumer, 0, ids[start : start + 500], justid=True
            )

    def _claim(self, min_idle_ms: int | None = None) -> list[Entry]:
        """Reclaim idle pending entries; over-delivered ones go straight to the dead stream."""
        reply: Any = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.config.claim_idle_ms if min_idle_ms is None else min_idle_ms,
            start_id=self._claim_cursor,
            count=self.config.batch_size,
        )
        # continue where this pass ended: on Redis 6.2, trimmed entries stay pending with no payload and
        # would otherwise fill every pass from 0-0, so real idle entries behind them were never reclaimed
        self._claim_cursor = _text(reply[0]) if reply and reply[0] else "0-0"
        items = reply[1] if len(reply) > 1 else []
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            log.warning("%d pending entries of %s were trimmed before processing", len(deleted), self.stream)
            self.counters.add("?", "?", "shed", len(deleted))
            self._note_trimmed([_text(i) for i in deleted])
        items = [(i, f) for i, f in items if f is not None and _text(i) not in self.held]
        if not items:
            return []
        counts = self._delivery_counts([_text(i) for i, _ in items])
        entries = [Entry(_text(i), dict(f), counts.get(_text(i), 1)) for i, f in items]
        log.info("%s worker %s reclaimed %d idle entries", self.handler.stage, self.consumer, len(entries))
        over = [e for e in entries if e.deliveries > self.config.max_deliveries]
        if over:
            reasons = [(e, self._over_delivered_reason(e)) for e in over]
            self._commit(BatchResult(dead=reasons), over)
        return [e for e in entries if e.deliveries <= self.config.max_deliveries]

    def _note_trimmed(self, ids: list[str]) -> None:
        """Redis 7 drops trimmed entries from the pending list when they are claimed: note their ids, so the
        publisher (which knows each id's frame) still accounts them as shed instead of as processed."""
        key = self.names.trimmed(self.stream)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=dict.fromkeys(ids, self.group))
        pipe.expire(key, 7 * 86_400)
        pipe.execute()

    def _delivery_counts(self, ids: list[str]) -> dict[str, int]:
        rows: Any = self.client.xpending_range(
            self.stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 4 + 10,
            consumername=self.consumer,
        )
        return {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def _over_delivered_reason(self, entry: Entry) -> str:
        last = self._last_errors.pop(entry.entry_id, "unknown (a worker died or failed while handling it)")
        return f"delivered {entry.deliveries} times (limit {self.config.max_deliveries}); last error: {last}"

    # ------------------------------------------------------------------ one batch

    def process_batch(self, batch: list[Entry], stop: threading.Event) -> None:
        """Handle one batch and commit it; transient errors wait and retry, others leave it pending."""
        started = time.perf_counter()
        while True:
            try:
                result = self.handler.handle(batch, self.counters)
                break
            except self.transient as exc:
                self._wait_transient(exc, stop)
            except Exception as exc:
                self._handle_failure(batch, exc, stop)
                return
        self._redis(lambda: self._commit(result, batch), stop)
        self._beat()
        self.processed += len(batch)
        if self.metrics is not None:
            self.metrics.batch_seconds.labels(self.handler.stage).observe(time.perf_counter() - started)

    def tick(self, stop: threading.Event) -> None:
        """Call the handler's ``tick(now)`` (when it has one) and commit what it releases."""
        tick = getattr(self.handler, "tick", None)
        if tick is None:
            return
        while True:
            try:
                result: BatchResult = tick(time.time(), self.counters)
                break
            except self.transient as exc:
                self._wait_transient(exc, stop)
        if result.outputs or result.dead or result.released:
            self._redis(lambda: self._commit(result, ()), stop)

    def _wait_transient(self, exc: BaseException, stop: threading.Event) -> None:
        reason = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if isinstance(exc, TransactionConflictError):  # the database answers: not an outage for /readyz
            log.warning("%s: %s; retrying the batch in 2s", self.handler.stage, reason)
        else:
            log.warning(
                "%s: a server is unreachable (%s); retrying the batch in 2s", self.handler.stage, reason
            )
            self._trouble(f"a server is unreachable ({type(exc).__name__}); batch waiting")
        if stop.wait(2.0):
            raise ServerUnavailable("stopped while a server was unreachable; batch left pending")
        with contextlib.suppress(redis.RedisError):
            self._heartbeat()  # still alive, waiting: keep showing in `moodstream status`

    def _handle_failure(self, batch: list[Entry], exc: Exception, stop: threading.Event) -> None:
        """A batch failed: retry entries one by one so one poison entry does not hold back the rest."""
        reason = redact_text(f"{type(exc).__name__}: {exc}")
        if len(batch) == 1:
            log.error("%s failed on entry %s: %s", self.handler.stage, batch[0].entry_id, reason)
            self._last_errors[batch[0].entry_id] = reason
            if len(self._last_errors) > 10_000:
                self._last_errors.pop(next(iter(self._last_errors)))
            self.counters.add("?", "?", "errors")
            return
        log.warning(
            "%s batch of %d failed (%s); retrying entries one by one", self.handler.stage, len(batch), reason
        )
        for entry in batch:
            self.process_batch([entry], stop)

    def _commit(self, result: BatchResult, batch: Sequence[Entry]) -> None:
        """Outputs, dead letters, counters and XACK of the batch (less its held entries, plus the released
        ones) in one MULTI/EXEC transaction."""
        pipe = self.client.pipeline(transaction=True)
        if self.output_stream is not None:
            for fields in result.outputs:
                out: Any = fields
                pipe.xadd(self.output_stream, out)  # never trimmed: capped by backpressure
        for entry, reason in result.dead:
            pipe.xadd(self.names.dead, dict[Any, Any](self._dead_letter(entry, reason).encode()))
            log.warning("%s sent entry %s to dead: %s", self.handler.stage, entry.entry_id, reason)
        self.counters.flush(pipe)
        held = set(result.held)
        acks = [e.entry_id for e in batch if e.entry_id not in held] + list(result.released)
        if acks:
            pipe.xack(self.stream, self.group, *acks)
        pipe.execute()
        self.held.difference_update(result.released)
        self.held.update(held)

    def _dead_letter(self, entry: Entry, reason: str) -> DeadLetter:
        known = frame_key_if_readable(entry.fields)
        if known is not None:
            self.counters.add(known[0].store_id, known[0].camera_id, "dead")
        return DeadLetter(
            source_stream=self.stream,
            entry_id=entry.entry_id,
            stage=self.handler.stage,
            reason=redact_text(reason),
            deliveries=entry.deliveries,
            failed_ms=int(time.time() * 1000),
            key=known[0] if known else None,
            captured_ms=known[1] if known else None,
        )

    # ------------------------------------------------------------------ liveness

    def _beat(self) -> None:
        if self.health is not None:
            self.health.beat(f"{self.handler.stage}: reading {self.stream}", source=self.handler.stage)

    def _trouble(self, reason: str) -> None:
        if self.health is not None:
            self.health.trouble(f"{self.handler.stage}: {reason}", source=self.handler.stage)

    def _heartbeat(self) -> None:
        lag = self._group_lag()
        if self.metrics is not None and lag is not None:
            self.metrics.lag.labels(self.handler.stage).set(lag)
        key = self.names.heartbeat(self.handler.stage, self.consumer)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                "stage": self.handler.stage,
                "consumer": self.consumer,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": int(self._started),
                "beat": int(time.time()),
                "processed": self.processed,
                "lag": -1 if lag is None else lag,
            },
        )
        pipe.expire(key, max(2, int(self.config.heartbeat_s * 3)))
        pipe.execute()

    def _group_lag(self) -> int | None:
        groups: Any = self.client.xinfo_groups(self.stream)
        for group in groups:
            if _text(group.get("name", b"")) == self.group:
                lag = group.get("lag")
                return int(lag) if lag is not None else None
        return None

    def _leave(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.names.heartbeat(self.handler.stage, self.consumer))
        log.info("%s worker %s stopped after %d entries", self.handler.stage, self.consumer, self.processed)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
