"""The HTTP endpoint of one process: Prometheus metrics and health probes on one address and port.

``serve_observability(registry, health, address, port)`` starts a daemon thread serving

* ``GET /metrics``: the process's Prometheus registry (text format);
* ``GET /healthz``: 200 ``ok`` while the process runs (liveness);
* ``GET /readyz``: 200 when the process's loop is connected to its servers and made progress recently,
  else 503; the body is one JSON object ``{"ready": ..., "reason": ..., "last_beat_age_s": ...}``.

The address defaults to 127.0.0.1 (``MOODSTREAM_METRICS_ADDRESS``); containers set 0.0.0.0 explicitly.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from moodstream.common.health import HealthState

log = logging.getLogger(__name__)

PATHS: Final[tuple[str, ...]] = ("/metrics", "/healthz", "/readyz")
"""Every path the endpoint serves (anything else is 404)."""


class ObservabilityServer(ThreadingHTTPServer):
    """The HTTP server of one process (a ThreadingHTTPServer that knows its registry and health)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState) -> None:
        self.registry = registry
        self.health = health
        if ":" in address[0]:  # an IPv6 address such as "::"
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket (the real port when 0 was asked)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ObservabilityServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(HTTPStatus.OK, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            verdict = self.server.health.readiness()
            age = None if verdict.last_beat_age_s is None else round(verdict.last_beat_age_s, 1)
            body = {"ready": verdict.ready, "reason": verdict.reason, "last_beat_age_s": age}
            status = HTTPStatus.OK if verdict.ready else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, json.dumps(body).encode() + b"\n", "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, f"not found; try {', '.join(PATHS)}\n".encode(), "text/plain")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes arrive every few seconds: keep them out of the log."""


def serve_observability(
    registry: CollectorRegistry, health: HealthState, address: str, port: int
) -> ObservabilityServer | None:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``address:port`` in a daemon thread.

    ``port`` 0 or less serves nothing (None). A port already taken logs one warning and returns None: the
    stage runs on without its endpoint rather than crash-looping.
    """
    if port <= 0:
        return None
    try:
        server = ObservabilityServer((address, port), registry, health)
    except OSError as exc:
        reason = exc.strerror or exc
        log.warning("metrics and health not served: %s:%d unavailable (%s)", address, port, reason)
        return None
    thread = threading.Thread(target=server.serve_forever, name="observability", daemon=True)
    thread.start()
    log.info("metrics and health on %s (/metrics, /healthz, /readyz)", server.url)
    return server
