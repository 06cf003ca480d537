"""Recorded footage: when a file was recorded, frame identities that do not change between runs, and pacing
by the detectors instead of the clock.

* ``container_creation_ms(path)``: the creation time an MP4/MOV (ISO base media) file records in its movie
  header (``moov/mvhd``), as UTC epoch ms; None when the file is not such a container, records none (0) or
  is damaged. Only box headers are read (seeks), so a day-long file costs a few reads.
* ``FootagePacer``: a file with a known start is read as fast as the pipeline takes it, not at its own
  speed; before each frame the reader waits while more than ``max_backlog`` of its frames sit in the frames
  stream unread by the detector group, so a fast reader never makes the stream cap shed frames.

A footage file's frames are identified by (store, camera, epoch = start in ms, seq = sample index): the
same file with the same start gives the same identities on every run, and the aggregator's frame-identity
check (``applied_frames``) counts each once.
"""

from __future__ import annotations

import bisect
import struct
import threading
from pathlib import Path
from typing import BinaryIO, Final

import redis

from moodstream.common.streams import ServerUnavailable, retry_forever
from moodstream.ingest.publisher import last_delivered_id, parse_entry_id

MP4_EPOCH_OFFSET_S: Final[int] = 2_082_844_800
"""Seconds from 1904-01-01 (the ISO base media epoch) to 1970-01-01."""

MAX_BOXES: Final[int] = 10_000
"""Most boxes read while looking for the movie header (a damaged file cannot loop for long)."""

LATEST_CREATION_MS: Final[int] = 32_503_680_000_000
"""Creation times after the year 3000 are treated as garbage."""


class FootageError(ValueError):
    """Footage settings that cannot be used (e.g. a backlog bound out of range)."""


def _box_header(handle: BinaryIO, end: int) -> tuple[bytes, int, int] | None:
    """(type, payload start, box end) of the box at the current position; None past ``end`` or damaged."""
    start = handle.tell()
    head = handle.read(8)
    if len(head) < 8:
        return None
    size, kind = struct.unpack(">I4s", head)
    if size == 1:
        large = handle.read(8)
        if len(large) < 8:
            return None
        size = struct.unpack(">Q", large)[0]
    elif size == 0:
        size = end - start
    payload = handle.tell()
    if size < payload - start or start + size > end:
        return None
    return kind, payload, start + size


def _find_box(handle: BinaryIO, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(payload start, end) of the first ``kind`` box among the boxes between ``start`` and ``end``."""
    handle.seek(start)
    for _ in range(MAX_BOXES):
        header = _box_header(handle, end)
        if header is None:
            return None
        found, payload, box_end = header
        if found == kind:
            return payload, box_end
        if box_end >= end:
            return None
        handle.seek(box_end)
    return None


def container_creation_ms(path: str | Path) -> int | None:
    """The movie header's creation time of an MP4/MOV file as UTC epoch ms; None when absent or unreadable."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            moov = _find_box(handle, b"moov", 0, size)
            if moov is None:
                return None
            mvhd = _find_box(handle, b"mvhd", *moov)
            if mvhd is None:
                return None
            handle.seek(mvhd[0])
            body = handle.read(12)
    except OSError:
        return None
    if len(body) < 8:
        return None
    version = body[0]
    if version == 1 and len(body) == 12:
        seconds = struct.unpack(">Q", body[4:12])[0]
    elif version == 0:
        seconds = struct.unpack(">I", body[4:8])[0]
    else:
        return None
    created_ms = (seconds - MP4_EPOCH_OFFSET_S) * 1000
    return created_ms if 0 < created_ms <= LATEST_CREATION_MS else None


class FootagePacer:
    """Holds a footage reader back while the detectors have not read enough of its frames.

    ``note(entry_id)`` records each published frame's stream entry id; ``wait(stop)`` returns once at most
    ``max_backlog`` of them lie beyond the group's last-delivered id (or when ``stop`` is set: False).
    """

    def __init__(
        self,
        client: redis.Redis,
        redis_url: str,
        stream: str,
        group: str,
        max_backlog: int,
        poll_s: float = 0.05,
    ) -> None:
        if not 1 <= max_backlog <= 1_000_000:
            raise FootageError(f"max_backlog: expected an integer in [1, 1000000], got {max_backlog}")
        self.client = client
        self.redis_url = redis_url
        self.stream = stream
        self.group = group
        self.max_backlog = max_backlog
        self.poll_s = poll_s
        self._ids: list[tuple[int, int]] = []
        self.waits = 0

    def note(self, entry_id: object) -> None:
        """Remember the entry id a frame was published under (ignored when the publish dropped it)."""
        if isinstance(entry_id, bytes | str):
            self._ids.append(parse_entry_id(entry_id))

    def backlog(self) -> int:
        """This reader's frames still unread by the group (all of them while the group does not exist)."""
        delivered = self._last_delivered()
        if delivered is not None:
            del self._ids[: bisect.bisect_right(self._ids, delivered)]
        return len(self._ids)

    def wait(self, stop: threading.Event) -> bool:
        """Block while the backlog is above the bound (and while Redis is unreachable); False when ``stop``
        was set meanwhile."""
        try:
            while retry_forever(self.backlog, what="Redis", url=self.redis_url, stop=stop) > self.max_backlog:
                self.waits += 1
                if stop.wait(self.poll_s):
                    return False
        except ServerUnavailable:
            return False
        return not stop.is_set()

    def _last_delivered(self) -> tuple[int, int] | None:
        return last_delivered_id(self.client, self.stream, self.group)
