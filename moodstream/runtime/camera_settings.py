"""Per-camera settings read from ``stores.yaml`` by the stage workers: visit settings (tracker), zones
(tracker), masks and detection settings (detector).

``RegistryCameras`` re-reads the file when it changed (an edit with mistakes is logged and the last good
settings kept) and gives defaults for a camera the file does not list, or when there is no file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from moodstream.runtime.scene import CameraScene
from moodstream.schemas.regions import Zone
from moodstream.schemas.registry import Camera, Registry
from moodstream.schemas.visit_config import VisitConfig

log = logging.getLogger(__name__)


class RegistryCameras:
    """Settings of each camera from ``stores.yaml`` (followed while it changes); callable as
    ``settings(store_id, camera_id)`` for the camera's visit settings."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._registry: Registry | None = None
        self._unknown: set[tuple[str, str]] = set()

    def _load(self) -> None:
        from moodstream.schemas.registry import RegistryError, load_registry

        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._registry, self._mtime = load_registry(self.path), mtime
        except (OSError, RegistryError) as exc:
            log.warning("registry %s not (re)loaded, keeping the last settings: %s", self.path, exc)

    def camera(self, store_id: str, camera_id: str) -> Camera | None:
        """The camera's registry entry (None: no registry, or a camera it does not list)."""
        from moodstream.schemas.registry import UnknownCameraError

        self._load()
        if self._registry is None:
            return None
        try:
            return self._registry.camera(store_id, camera_id)
        except UnknownCameraError:
            if (store_id, camera_id) not in self._unknown:
                self._unknown.add((store_id, camera_id))
                log.info("%s/%s is not in the registry; default settings", store_id, camera_id)
            return None

    def __call__(self, store_id: str, camera_id: str) -> VisitConfig:
        """The camera's resolved visit settings (defaults for an unknown camera)."""
        if self.camera(store_id, camera_id) is None or self._registry is None:
            return VisitConfig()
        return self._registry.visit_config(store_id, camera_id)

    def zones(self, store_id: str, camera_id: str) -> tuple[Zone, ...]:
        """The camera's zones (none for an unknown camera)."""
        camera = self.camera(store_id, camera_id)
        return () if camera is None else tuple(camera.zones)

    def scene(self, store_id: str, camera_id: str) -> CameraScene:
        """The camera's masks, zones and detection settings (defaults for an unknown camera)."""
        return CameraScene.of(self.camera(store_id, camera_id), store_id)
