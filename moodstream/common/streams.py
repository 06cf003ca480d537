"""Redis connection and the names of moodstream's streams, groups and counters under a key prefix.

| key | what |
|---|---|
| ``<prefix>frames`` / ``faces`` / ``tracks`` / ``emotions`` / ``dead`` | the streams of DESIGN.md |
| ``<prefix>stats:<stage>`` | hash of per-camera counters (``store/camera:frames_in`` ...) |
| ``<prefix>heartbeat:<stage>:<consumer>`` | hash of a live worker's state, expiring |
| ``<prefix>latency`` | capped list of recent capture-to-commit latencies in ms |
| ``<prefix>cameras`` | hash of the ingest's per-camera state (JSON) |
| ``<prefix>lease:ingest:<store>/<camera>`` | the camera's lease: the one ingest that reads it |
| ``<prefix>ingest:standby`` | hash of ingests waiting for a camera's lease (JSON) |
| ``<prefix>frames:trimmed`` | hash of frame entry ids trimmed while pending (until accounted as shed) |

Only the ``frames`` stream is capped by trimming (MAXLEN; the ingest accounts what the cap sheds). Every
later stream (``faces``, ``tracks``, ``emotions``, ``dead``) is capped by backpressure: a writer adds to it
only while it is under the cap or, once at the cap, while its backlog (entries some group has still to read
or acknowledge, counted after ``trim_acknowledged`` deleted the entries every group has acknowledged) is, so
no entry is ever trimmed before its consumers acknowledged it and the pressure propagates up to the ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import redis

from moodstream.common.redaction import redact_text, redact_url

log = logging.getLogger(__name__)

STAGES: Final[tuple[str, ...]] = ("ingest", "detector", "tracker", "classifier", "aggregator")

T = TypeVar("T")


@dataclass(frozen=True)
class StreamNames:
    """Every Redis key moodstream uses, under one prefix (default ``moodstream:``)."""

    prefix: str = "moodstream:"

    @property
    def frames(self) -> str:
        """Stream of sampled frames (JPEG), read by the ``detector`` group."""
        return self.prefix + "frames"

    @property
    def faces(self) -> str:
        """Stream of detected faces with crops, read by the ``tracker`` group."""
        return self.prefix + "faces"

    @property
    def tracks(self) -> str:
        """Stream of tracked frames (gate verdicts, ended visits, vote crops), read by ``classifier``."""
        return self.prefix + "tracks"

    @property
    def emotions(self) -> str:
        """Stream of classified faces, read by the ``aggregator`` group."""
        return self.prefix + "emotions"

    @property
    def dead(self) -> str:
        """Dead-letter stream (entries given up on, and shed frames), read by ``aggregator-losses``."""
        return self.prefix + "dead"

    @property
    def standby(self) -> str:
        """Hash ``<camera label>|<ingest>`` -> JSON of an ingest waiting for a camera another one reads."""
        return self.prefix + "ingest:standby"

    @property
    def latency(self) -> str:
        """Capped list of capture-to-commit latencies (ms) written by the aggregator."""
        return self.prefix + "latency"

    @property
    def cameras(self) -> str:
        """Hash camera label -> JSON state written by the ingest."""
        return self.prefix + "cameras"

    def trimmed(self, stream: str) -> str:
        """Hash of entry ids of ``stream`` that were trimmed while pending (noted by the reclaiming worker,
        accounted as shed by the publisher, which knows each id's frame)."""
        return f"{stream}:trimmed"

    def stats(self, stage: str) -> str:
        """Hash of per-camera counters of one stage."""
        return f"{self.prefix}stats:{stage}"

    def heartbeat(self, stage: str, consumer: str) -> str:
        """Hash of one live worker's state (expires when the worker stops beating)."""
        return f"{self.prefix}heartbeat:{stage}:{consumer}"

    def heartbeat_pattern(self) -> str:
        """SCAN pattern matching every heartbeat key."""
        return f"{self.prefix}heartbeat:*"


class ServerUnavailable(ConnectionError):
    """A server stayed unreachable until the caller asked to stop."""


def connect_redis(url: str) -> redis.Redis:
    """A Redis client for ``url`` (bytes in and out); nothing is sent until first use."""
    return redis.Redis.from_url(
        url, decode_responses=False, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
    )


def retry_forever(
    action: Callable[[], T],
    *,
    what: str,
    url: str,
    stop: threading.Event | None = None,
    transient: tuple[type[BaseException], ...] = (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.exceptions.OutOfMemoryError,  # maxmemory + noeviction: writes wait until Redis has room
    ),
    max_wait_s: float = 10.0,
) -> T:
    """Run ``action`` until it succeeds, waiting (capped doubling) after each transient error.

    Logs one warning line per failure naming the server with its URL redacted. Raises
    ServerUnavailable when ``stop`` is set while waiting; other exceptions pass through.
    """
    wait = 0.5
    while True:
        try:
            return action()
        except transient as exc:
            reason = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            log.warning(
                "%s at %s unreachable or refusing (%s); retrying in %.1fs",
                what,
                redact_url(url),
                reason,
                wait,
            )
            if stop is not None:
                if stop.wait(wait):
                    raise ServerUnavailable(f"{what} at {redact_url(url)} unreachable; stopped") from None
            else:
                time.sleep(wait)
            wait = min(max_wait_s, wait * 2)


def wait_for_redis(client: redis.Redis, url: str, stop: threading.Event | None = None) -> None:
    """Block until Redis answers PING (logging each failed try)."""
    retry_forever(client.ping, what="Redis", url=url, stop=stop)


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) if missing; reading starts at the stream's start."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _oldest_unacknowledged(client: redis.Redis, stream: str, groups: list[Any]) -> str | None:
    """Lowest id that some group may not have acknowledged yet (None: the stream has no group).

    Per group: its oldest pending entry, else the entry after its last delivered one. Read without a
    transaction on purpose: an acknowledged entry never becomes unacknowledged again, so a bound read a
    moment ago is still safe to trim below.
    """
    floor: tuple[int, int] | None = None
    for group in groups:
        ms, seq = _id_order(_text(group["last-delivered-id"]))
        low = (ms, seq + 1)
        if int(group.get("pending", 0)):
            summary: Any = client.xpending(stream, _text(group["name"]))
            if summary and summary.get("pending") and summary.get("min") is not None:
                low = min(low, _id_order(_text(summary["min"])))
        floor = low if floor is None else min(floor, low)
    return None if floor is None else f"{floor[0]}-{floor[1]}"


def trim_acknowledged(client: redis.Redis, stream: str) -> int:
    """Delete the entries of ``stream`` that every consumer group has acknowledged (XTRIM MINID, exact)
    and return the backlog: the stream's length after, i.e. the entries from the oldest one some group
    has still to read or acknowledge on. A stream without a group is not trimmed (nobody read it yet);
    a missing stream has a backlog of 0."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such key
        return 0
    floor = _oldest_unacknowledged(client, stream, list(groups))
    pipe = client.pipeline(transaction=False)
    if floor is not None:
        pipe.xtrim(stream, minid=floor, approximate=False)
    pipe.xlen(stream)
    return int(pipe.execute()[-1])
