"""The multi-camera supervisor: one reader thread per enabled camera, registry edits applied live.

``IngestSupervisor.run(stop)`` starts a reader per camera, then every ``reload_interval_s`` checks the
registry file: when it changed and loads without errors, cameras that were added are started, removed
or disabled ones stopped, and edited ones restarted (a new stream epoch); when the edit has errors,
they are logged and the running configuration is kept. Cameras of a store outside its opening hours are not
read (state ``closed`` until the store opens); the supervisor checks the hours on each pass. It also
accounts shed frames and publishes each camera's state to Redis for ``moodstream status`` and the live view.

One camera, one reader, however many ingests run on a registry: a reader starts only once its store is open
and this ingest holds the camera's lease (``<prefix>lease:ingest:<store>/<camera>``, SET NX PX, renewed
every third of ``lease_ms``). A camera whose lease another ingest holds waits (a log line, and an entry in
the ``ingest:standby`` hash that ``moodstream status`` shows) and is taken over, as a new stream epoch, when
that ingest stops (released at once) or dies (after ``lease_ms``). A reader whose lease was lost (this
ingest stalled past ``lease_ms``) stops, and the camera waits again. A camera whose store closes is stopped
and its lease released.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from moodstream.common.health import HealthState
from moodstream.common.lease import StageLease
from moodstream.common.redaction import redact_text
from moodstream.common.streams import StreamNames
from moodstream.ingest.camera import CameraReader, CameraStatus, IngestConfig
from moodstream.ingest.footage import FootagePacer
from moodstream.ingest.publisher import FramePublisher
from moodstream.ingest.sources import CameraSpec

log = logging.getLogger(__name__)

LoadCameras = Callable[[Path], list[CameraSpec]]
"""Reads the registry file into camera specs (enabled cameras only); raises on any error."""


@dataclass
class _Running:
    spec: CameraSpec
    reader: CameraReader
    thread: threading.Thread
    stop: threading.Event
    lease: StageLease


def ingest_owner() -> str:
    """A unique name of this ingest (host, pid, random suffix): the owner written into camera leases."""
    return f"ingest-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class IngestSupervisor:
    """Runs every enabled camera of a registry file and follows edits of that file."""

    def __init__(
        self,
        registry_path: Path,
        load_cameras: LoadCameras,
        client: redis.Redis,
        publisher: FramePublisher,
        names: StreamNames,
        config: IngestConfig,
        *,
        health: HealthState | None = None,
        clock: Callable[[], datetime] | None = None,
        owner: str | None = None,
    ) -> None:
        self.registry_path = registry_path
        self.load_cameras = load_cameras
        self.client = client
        self.publisher = publisher
        self.names = names
        self.config = config
        self.health = health
        self.clock = clock or (lambda: datetime.now(UTC))
        self.wanted: dict[tuple[str, str], CameraSpec] = {}
        """Every enabled camera of the registry, open or closed."""
        self.owner = owner or ingest_owner()
        self.running: dict[tuple[str, str], _Running] = {}
        self.waiting: dict[tuple[str, str], CameraSpec] = {}
        """Cameras of open stores whose lease another ingest holds (this one takes them over when it can)."""
        self.closed: dict[tuple[str, str], datetime | None] = {}
        """Cameras of stores outside their opening hours (not read), with the time their store opens."""
        self._mtime: float | None = None

    def run(
        self, stop: threading.Event, initial: list[CameraSpec] | None = None, until_finished: bool = False
    ) -> None:
        """Supervise until ``stop`` (or, with ``until_finished``, until every reader has ended).

        ``initial`` (already loaded specs) skips the first load of the registry file.
        """
        if initial is not None:
            self._mtime = self._current_mtime()
            self.apply(initial)
        try:
            while not stop.is_set():
                self.reload_if_changed()
                self._tick()
                if until_finished and self.all_finished():
                    log.info("every camera has finished; ingest stops")
                    break
                stop.wait(self.config.reload_interval_s)
        finally:
            self.shutdown()

    def reload_if_changed(self) -> bool:
        """Apply the registry file if it changed since last time; False when unchanged or invalid."""
        mtime = self._current_mtime()
        if mtime is None or mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            specs = self.load_cameras(self.registry_path)
        except Exception as exc:
            log.error(
                "registry %s has errors; keeping the running configuration (%d cameras): %s",
                self.registry_path,
                len(self.running),
                redact_text(str(exc)),
            )
            return False
        self.apply(specs)
        return True

    def apply(self, specs: list[CameraSpec]) -> None:
        """Make the running readers match ``specs``: start added, stop removed, restart edited; cameras of
        stores outside their opening hours are not started (``follow_hours``)."""
        wanted = {(s.store_id, s.camera_id): s for s in specs}
        for key in list(self.running):
            if key not in wanted or wanted[key] != self.running[key].spec:
                self._stop_camera(key)
            else:
                self.running[key].spec = wanted[key]  # same camera, perhaps new opening hours
        for key in list(self.waiting):
            if key not in wanted or wanted[key] != self.waiting[key]:
                self._stop_waiting(key)
            else:
                self.waiting[key] = wanted[key]
        now = self.clock()
        for key in list(self.closed):
            if key in wanted:
                self.closed[key] = wanted[key].next_change(now)  # the hours may have changed
            else:
                del self.closed[key]
                self.client.hdel(self.names.cameras, "/".join(key))
        self.wanted = wanted
        self.follow_hours()

    def follow_hours(self) -> None:
        """Start the cameras whose store is open now (those whose lease another ingest holds wait, and are
        tried again on each pass), stop (and mark closed) those whose store is closed."""
        now = self.clock()
        for key, spec in self.wanted.items():
            is_open = spec.is_open(now)
            if is_open and key not in self.running:
                self.closed.pop(key, None)
                self._start_camera(spec)
            elif not is_open and key not in self.closed:
                if key in self.running:
                    self._stop_camera(key, forget=False)
                if key in self.waiting:
                    self._stop_waiting(key)
                self.closed[key] = spec.next_change(now)
                opens = self.closed[key]
                log.info(
                    "camera %s: store closed (opening hours); not read until %s",
                    spec.label,
                    opens.isoformat(timespec="minutes") if opens else "its hours change",
                )

    def shutdown(self) -> None:
        """Stop every reader, release their leases (a waiting ingest takes over at once) and publish their
        final state (entries stay for ``status``)."""
        for key in list(self.waiting):
            self._stop_waiting(key)
        for running in self.running.values():
            running.stop.set()
        for running in self.running.values():
            running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
            running.lease.release()
        self._tick(follow_hours=False)  # no camera may start (or take a lease) while shutting down

    def _lease(self, spec: CameraSpec) -> StageLease:
        return StageLease(
            self.client,
            self.publisher.redis_url,
            self.names,
            f"ingest:{spec.label}",
            self.owner,
            self.config.lease_ms,
        )

    def _start_camera(self, spec: CameraSpec) -> None:
        """Start the camera's reader when its lease is ours; else let the camera wait (logged once)."""
        key = (spec.store_id, spec.camera_id)
        lease = self._lease(spec)
        try:
            taken = lease.try_acquire()
        except redis.RedisError as exc:
            log.warning("camera %s waits: its lease cannot be taken (%s)", spec.label, redact_text(str(exc)))
            taken = False
        if not taken:
            if key not in self.waiting:
                log.warning(
                    "camera %s is read by another ingest (%s); this ingest (%s) waits and takes it over "
                    "when that one stops",
                    spec.label,
                    _holder(lease),
                    self.owner,
                )
            self.waiting[key] = spec
            return
        if key in self.waiting:
            log.info("camera %s taken over by this ingest (%s)", spec.label, self.owner)
            self._stop_waiting(key)
        stop = threading.Event()
        pacer = FootagePacer(
            self.client, self.publisher.redis_url, self.names.frames, self.publisher.group,
            self.config.footage_backlog,
        )  # fmt: skip
        reader = CameraReader(spec, self.config, self.publisher, pacer)
        thread = threading.Thread(target=reader.run, args=(stop,), name=f"camera-{spec.label}", daemon=True)
        self.running[key] = _Running(spec, reader, thread, stop, lease)
        lease.keep(stop)  # a lost lease sets stop: the reader ends, the camera waits again
        thread.start()
        log.info("camera %s started (%s at %g fps)", spec.label, spec.redacted_source, spec.fps)

    def _stop_camera(self, key: tuple[str, str], forget: bool = True) -> None:
        running = self.running.pop(key)
        running.stop.set()
        running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
        running.lease.release()
        if forget:
            self.client.hdel(self.names.cameras, running.spec.label)
        log.info("camera %s stopped", running.spec.label)

    def _stop_waiting(self, key: tuple[str, str]) -> None:
        spec = self.waiting.pop(key)
        try:
            self.client.hdel(self.names.standby, _standby_field(spec.label, self.owner))
        except redis.RedisError as exc:
            log.warning("could not clear the standby state of %s: %s", spec.label, redact_text(str(exc)))

    def _check_leases(self) -> None:
        """Cameras whose lease was lost go back to waiting (``follow_hours`` tries to take them again)."""
        for key, running in list(self.running.items()):
            if running.lease.lost.is_set():
                running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
                del self.running[key]
                self.waiting[key] = running.spec

    def _tick(self, follow_hours: bool = True) -> None:
        try:
            if follow_hours:
                self._check_leases()
                self.follow_hours()
            self.publisher.account_shed()
            self.publish_status()
        except redis.RedisError as exc:
            log.warning("could not update camera state in Redis: %s", redact_text(str(exc)))
            if self.health is not None:
                self.health.trouble(f"ingest: Redis unreachable ({type(exc).__name__})", source="ingest")
            return
        if self.health is not None:
            note = (
                f"ingest: {len(self.running)} cameras read, {len(self.waiting)} in standby (read by another "
                f"ingest), {len(self.closed)} closed (opening hours)"
            )
            self.health.beat(note, source="ingest")

    def publish_status(self) -> None:
        """Write each camera's state as JSON into the ``cameras`` hash (with this ingest's name; ``closed``
        outside opening hours, with ``opens``: the ISO time its store opens, or null), and each waiting
        camera into the ``ingest:standby`` hash (with the ingest that reads it)."""
        mapping = {
            r.spec.label: json.dumps(
                {
                    **asdict(r.reader.status),
                    "source": r.spec.redacted_source,
                    "fps": r.spec.fps,
                    "ingest": self.owner,
                }
            )
            for r in self.running.values()
        }
        for key, opens in self.closed.items():
            spec = self.wanted[key]
            closed = CameraStatus(state="closed")
            mapping[spec.label] = json.dumps(
                {
                    **asdict(closed),
                    "source": spec.redacted_source,
                    "fps": spec.fps,
                    "opens": opens.isoformat(timespec="minutes") if opens else None,
                }
            )
        if mapping:
            self.client.hset(self.names.cameras, mapping=mapping)  # type: ignore[arg-type]
        if self.waiting:
            standby = {
                _standby_field(spec.label, self.owner): json.dumps(
                    {
                        "label": spec.label,
                        "ingest": self.owner,
                        "holder": _holder(self._lease(spec)),
                        "updated": time.time(),
                    }
                )
                for spec in self.waiting.values()
            }
            self.client.hset(self.names.standby, mapping=standby)  # type: ignore[arg-type]

    def all_finished(self) -> bool:
        """True when every camera's reader has ended (all non-looping files read to the end); a camera
        waiting for its store to open, or for another ingest that reads it, has not."""
        return (
            not self.closed
            and not self.waiting
            and all(not r.thread.is_alive() for r in self.running.values())
        )

    def camera_states(self) -> list[tuple[CameraSpec, CameraStatus | None]]:
        """Every enabled camera this ingest reads or would read, with its reader's status (None: its store is
        closed, nothing is read); cameras in standby are reported by the ingest that reads them."""
        running = [(r.spec, r.reader.status) for r in list(self.running.values())]
        return running + [(self.wanted[key], None) for key in list(self.closed)]

    def _current_mtime(self) -> float | None:
        try:
            return self.registry_path.stat().st_mtime_ns / 1e9
        except OSError:
            return None


def _standby_field(label: str, owner: str) -> str:
    return f"{label}|{owner}"


def _holder(lease: StageLease) -> str:
    """Who holds a lease now, for messages ("?" when unknown)."""
    try:
        return lease.holder() or "?"
    except redis.RedisError:
        return "?"


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
