"""The multi-camera supervisor: one reader thread per enabled camera, registry edits applied live.

``IngestSupervisor.run(stop)`` starts a reader per camera, then every ``reload_interval_s`` checks the
registry file: when it changed and loads without errors, cameras that were added are started, removed
or disabled ones stopped, and edited ones restarted (a new stream epoch); when the edit has errors,
they are logged and the running configuration is kept. Cameras of a store outside its opening hours are not
read (state ``closed`` until the store opens); the supervisor checks the hours on each pass. It also
accounts shed frames and publishes each camera's state to Redis for ``moodstream status`` and the live view.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from moodstream.common.health import HealthState
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
        self.running: dict[tuple[str, str], _Running] = {}
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
        """Start the cameras whose store is open now, stop (and mark closed) those whose store is closed."""
        now = self.clock()
        for key, spec in self.wanted.items():
            is_open = spec.is_open(now)
            if is_open and key not in self.running:
                self.closed.pop(key, None)
                self._start_camera(spec)
            elif not is_open and key not in self.closed:
                if key in self.running:
                    self._stop_camera(key, forget=False)
                self.closed[key] = spec.next_change(now)
                opens = self.closed[key]
                log.info(
                    "camera %s: store closed (opening hours); not read until %s",
                    spec.label,
                    opens.isoformat(timespec="minutes") if opens else "its hours change",
                )

    def shutdown(self) -> None:
        """Stop every reader and publish their final state (entries stay for ``status``)."""
        for running in self.running.values():
            running.stop.set()
        for running in self.running.values():
            running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
        self._tick(follow_hours=False)  # no camera may start while shutting down

    def _start_camera(self, spec: CameraSpec) -> None:
        stop = threading.Event()
        pacer = FootagePacer(
            self.client, self.publisher.redis_url, self.names.frames, self.publisher.group,
            self.config.footage_backlog,
        )  # fmt: skip
        reader = CameraReader(spec, self.config, self.publisher, pacer)
        thread = threading.Thread(target=reader.run, args=(stop,), name=f"camera-{spec.label}", daemon=True)
        self.running[(spec.store_id, spec.camera_id)] = _Running(spec, reader, thread, stop)
        thread.start()
        log.info("camera %s started (%s at %g fps)", spec.label, spec.redacted_source, spec.fps)

    def _stop_camera(self, key: tuple[str, str], forget: bool = True) -> None:
        running = self.running.pop(key)
        running.stop.set()
        running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
        if forget:
            self.client.hdel(self.names.cameras, running.spec.label)
        log.info("camera %s stopped", running.spec.label)

    def _tick(self, follow_hours: bool = True) -> None:
        if follow_hours:
            self.follow_hours()
        try:
            self.publisher.account_shed()
            self.publish_status()
        except redis.RedisError as exc:
            log.warning("could not update camera state in Redis: %s", redact_text(str(exc)))
            if self.health is not None:
                self.health.trouble(f"ingest: Redis unreachable ({type(exc).__name__})", source="ingest")
            return
        if self.health is not None:
            note = f"ingest: {len(self.running)} cameras read, {len(self.closed)} closed (opening hours)"
            self.health.beat(note, source="ingest")

    def publish_status(self) -> None:
        """Write each camera's state as JSON into the ``cameras`` hash (``closed`` outside opening hours,
        with ``opens``: the ISO time its store opens, or null)."""
        mapping = {
            r.spec.label: json.dumps(
                {**asdict(r.reader.status), "source": r.spec.redacted_source, "fps": r.spec.fps}
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

    def all_finished(self) -> bool:
        """True when every camera's reader has ended (all non-looping files read to the end); a camera
        waiting for its store to open has not."""
        return not self.closed and all(not r.thread.is_alive() for r in self.running.values())

    def camera_states(self) -> list[tuple[CameraSpec, CameraStatus | None]]:
        """Every enabled camera with its reader's status (None: its store is closed, nothing is read)."""
        running = [(r.spec, r.reader.status) for r in list(self.running.values())]
        return running + [(self.wanted[key], None) for key in list(self.closed)]

    def _current_mtime(self) -> float | None:
        try:
            return self.registry_path.stat().st_mtime_ns / 1e9
        except OSError:
            return None


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
