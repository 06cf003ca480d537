"""The multi-camera supervisor: one reader thread per enabled camera, registry edits applied live.

``IngestSupervisor.run(stop)`` starts a reader per camera, then every ``reload_interval_s`` checks the
registry file: when it changed and loads without errors, cameras that were added are started, removed
or disabled ones stopped, and edited ones restarted (a new stream epoch); when the edit has errors,
they are logged and the running configuration is kept. The supervisor also accounts shed frames and
publishes each camera's state to Redis for ``moodstream status`` and the live view.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from moodstream.common.redaction import redact_text
from moodstream.common.streams import StreamNames
from moodstream.ingest.camera import CameraReader, IngestConfig
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
    ) -> None:
        self.registry_path = registry_path
        self.load_cameras = load_cameras
        self.client = client
        self.publisher = publisher
        self.names = names
        self.config = config
        self.running: dict[tuple[str, str], _Running] = {}
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
        """Make the running readers match ``specs``: start added, stop removed, restart edited."""
        wanted = {(s.store_id, s.camera_id): s for s in specs}
        for key in list(self.running):
            if key not in wanted or wanted[key] != self.running[key].spec:
                self._stop_camera(key)
        for key, spec in wanted.items():
            if key not in self.running:
                self._start_camera(spec)

    def shutdown(self) -> None:
        """Stop every reader and publish their final state (entries stay for ``status``)."""
        for running in self.running.values():
            running.stop.set()
        for running in self.running.values():
            running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
        self._tick()

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

    def _stop_camera(self, key: tuple[str, str]) -> None:
        running = self.running.pop(key)
        running.stop.set()
        running.thread.join(timeout=self.config.open_timeout_ms / 1000 + 5)
        self.client.hdel(self.names.cameras, running.spec.label)
        log.info("camera %s stopped", running.spec.label)

    def _tick(self) -> None:
        try:
            self.publisher.account_shed()
            self.publish_status()
        except redis.RedisError as exc:
            log.warning("could not update camera state in Redis: %s", redact_text(str(exc)))

    def publish_status(self) -> None:
        """Write each camera's state as JSON into the ``cameras`` hash."""
        if not self.running:
            return
        mapping = {
            r.spec.label: json.dumps(
                {**asdict(r.reader.status), "source": r.spec.redacted_source, "fps": r.spec.fps}
            )
            for r in self.running.values()
        }
        self.client.hset(self.names.cameras, mapping=mapping)  # type: ignore[arg-type]

    def all_finished(self) -> bool:
        """True when every camera's reader has ended (all non-looping files read to the end)."""
        return all(not r.thread.is_alive() for r in self.running.values())

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
