"""Publishing frames to the capped ``frames`` stream, and accounting for frames the cap sheds.

XADD uses an approximate MAXLEN, so when the detectors fall behind Redis trims the oldest frames
instead of growing without bound. The publisher remembers the entry ids it wrote; ``account_shed``
compares them with the stream's first id and the detector group's last-delivered id: an entry that
was trimmed before the group ever read it was shed, and a ``DeadLetter`` with ``loss="shed"`` naming
the frame goes to the ``dead`` stream, so shed frames are counted per camera, never silent.

The dead stream is capped by backpressure like every later stream: while its backlog (letters the losses
stage has not acknowledged, e.g. with PostgreSQL down) is at ``dead_maxlen``, shed letters wait in this
process (``unsent_shed``) and go out, oldest first, on a later ``account_shed`` once there is room.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from typing import Any, Final

import redis

from moodstream.common.streams import StreamNames, retry_forever, trim_acknowledged
from moodstream.schemas import defaults
from moodstream.schemas.messages import DeadLetter, FrameKey, FrameMessage

log = logging.getLogger(__name__)

DETECTOR_GROUP = "detector"

RETRIED: Final[tuple[type[BaseException], ...]] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ResponseError,
)
"""Errors a frame is retried on (the camera waits, its ``seq`` does not move): outages and every refusal
(OOM under maxmemory noeviction, READONLY on a replica after a failover, MISCONF when snapshots fail,
NOPERM under a too narrow ACL). Dropping the frame would leave a gap in ``seq`` that nothing counts."""


def parse_entry_id(entry_id: bytes | str) -> tuple[int, int]:
    """``b"1700000000000-3"`` -> (1700000000000, 3), for ordering entry ids."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def last_delivered_id(client: redis.Redis, stream: str, group: str) -> tuple[int, int] | None:
    """The id (ms, seq) of the last entry delivered to consumer group ``group`` of ``stream`` (None: no
    such stream or group yet)."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet
        return None
    for found in groups:
        name = found.get("name", b"")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            return parse_entry_id(found["last-delivered-id"])
    return None


class FramePublisher:
    """Thread-safe writer of frame messages; retries while Redis is unreachable (until ``stop``)."""

    def __init__(
        self,
        client: redis.Redis,
        redis_url: str,
        names: StreamNames,
        maxlen: int,
        stop: threading.Event,
        group: str = DETECTOR_GROUP,
        dead_maxlen: int = defaults.DEAD_MAXLEN,
    ) -> None:
        self.client = client
        self.redis_url = redis_url
        self.names = names
        self.maxlen = maxlen
        self.stop = stop
        self.group = group
        self.dead_maxlen = dead_maxlen
        self.unsent_shed: deque[tuple[str, FrameKey, int]] = deque()
        """Shed frames whose letters wait for room in the dead stream (entry id, frame, capture ms)."""
        self._sent: deque[tuple[tuple[int, int], FrameKey, int]] = deque()
        self._lock = threading.Lock()
        self.shed_total = 0
        self.shed_by_camera: Counter[tuple[str, str]] = Counter()
        """Frames shed so far per (store, camera), for the ingest process's metrics."""
        self.refused = 0
        """Refused publish attempts (each was retried until accepted)."""

    def __call__(self, message: FrameMessage) -> bytes:
        """XADD the frame (capped) and count it for its camera; blocks while Redis is down or refuses the
        frame (retried, see ``RETRIED``). Returns the entry id."""
        fields: Any = message.encode()
        stats_field = f"{message.key.store_id}/{message.key.camera_id}:frames_out"

        def send() -> Any:
            pipe = self.client.pipeline(transaction=True)  # both or neither, also when a command is refused
            pipe.xadd(self.names.frames, fields, maxlen=self.maxlen, approximate=True)
            pipe.hincrby(self.names.stats("ingest"), stats_field, 1)
            try:
                return pipe.execute()[0]
            except redis.ResponseError:
                self.refused += 1
                raise

        entry_id = retry_forever(
            send, what="Redis (publishing frames)", url=self.redis_url, stop=self.stop, transient=RETRIED
        )
        with self._lock:
            self._sent.append((parse_entry_id(entry_id), message.key, message.captured_ms))
        return bytes(entry_id) if isinstance(entry_id, bytes) else str(entry_id).encode()

    def account_shed(self) -> int:
        """Send a shed dead letter for each published frame trimmed before the group read it."""
        first = self._first_id()
        delivered = self._last_delivered()
        trimmed: list[tuple[tuple[int, int], FrameKey, int]] = []
        with self._lock:
            while self._sent and (first is None or self._sent[0][0] < first):
                trimmed.append(self._sent.popleft())
        read = [t for t in trimmed if delivered is not None and t[0] <= delivered]
        pending = self._still_pending([t[0] for t in read])
        shed = [
            (f"{ident[0]}-{ident[1]}", key, captured)
            for ident, key, captured in trimmed
            if delivered is None or ident > delivered or ident in pending
        ]
        self.unsent_shed.extend(shed)
        self._send_shed()
        return len(shed)

    def _still_pending(self, ids: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of ``ids`` (read by a worker, now trimmed) were never acknowledged: their payload is lost."""
        if not ids:
            return set()
        low, high = min(ids), max(ids)
        rows: Any = self.client.xpending_range(
            self.names.frames, self.group, f"{low[0]}-{low[1]}", f"{high[0]}-{high[1]}", len(ids) + 10
        )
        pending = {parse_entry_id(row["message_id"]) for row in rows} & set(ids)
        # a worker that claimed them after the trim took them off the pending list (Redis 7) and noted them
        trimmed_key = self.names.trimmed(self.names.frames)
        noted: Any = self.client.hgetall(trimmed_key)
        lost = {parse_entry_id(i) for i in noted} & set(ids)
        if lost:
            self.client.hdel(trimmed_key, *[f"{ms}-{seq}" for ms, seq in lost])
        return pending | lost

    def _first_id(self) -> tuple[int, int] | None:
        """Id of the oldest entry still in the stream (None: the stream is empty or gone)."""
        head: Any = self.client.xrange(self.names.frames, count=1)
        return parse_entry_id(head[0][0]) if head else None

    def _last_delivered(self) -> tuple[int, int] | None:
        return last_delivered_id(self.client, self.names.frames, self.group)

    def _send_shed(self) -> None:
        """Send the waiting shed letters that fit under the dead stream's cap (oldest first)."""
        if not self.unsent_shed:
            return
        room = self.dead_maxlen - int(self.client.xlen(self.names.dead))
        if room < len(self.unsent_shed):  # letters stay up to the cap; make room from the accounted ones
            room = self.dead_maxlen - trim_acknowledged(self.client, self.names.dead)
        if room < len(self.unsent_shed):
            log.warning(
                "the dead stream is at its cap (%d letters not yet accounted in the database); %d shed "
                "letters wait in the ingest",
                self.dead_maxlen,
                len(self.unsent_shed) - max(0, room),
            )
        batch = [self.unsent_shed.popleft() for _ in range(min(max(0, room), len(self.unsent_shed)))]
        if batch:
            try:
                self._record_shed(batch)
            except redis.RedisError:
                self.unsent_shed.extendleft(reversed(batch))
                raise

    def _record_shed(self, shed: list[tuple[str, FrameKey, int]]) -> None:
        now = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=True)
        for entry_id, key, captured in shed:
            letter: Any = DeadLetter(
                source_stream=self.names.frames,
                entry_id=entry_id,
                stage="ingest",
                reason="shed: trimmed by the frames stream cap before a detector finished it",
                deliveries=0,
                failed_ms=now,
                loss="shed",
                key=key,
                captured_ms=captured,
            ).encode()
            pipe.xadd(self.names.dead, letter)  # never trimmed: capped by backpressure
            pipe.hincrby(self.names.stats("ingest"), f"{key.store_id}/{key.camera_id}:shed", 1)
        pipe.execute()
        self.shed_total += len(shed)
        self.shed_by_camera.update((key.store_id, key.camera_id) for _, key, _ in shed)
        log.warning("%d frames were shed by the frames stream cap (detectors too slow)", len(shed))
