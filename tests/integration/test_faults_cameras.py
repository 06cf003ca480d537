"""Network camera faults: a local MJPEG-over-HTTP camera (started by the test, on loopback) is frozen
(socket open, no data), killed and restarted, and flaps again; another camera runs beside it.

Promises: the faulty camera is reported offline within its read timeout, resumes within the backoff
cap after its source returns (and quickly again after a short blip later on: the backoff starts over
once frames flow), and the other camera is never affected. Frames go to the real frames stream.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest.backoff import BackoffPolicy
from moodstream.ingest.camera import CameraReader, IngestConfig
from moodstream.ingest.publisher import FramePublisher
from moodstream.ingest.sources import CameraSpec
from moodstream.schemas.messages import FrameMessage

READ_TIMEOUT_S = 1.0
BACKOFF = BackoffPolicy(base_s=0.2, cap_s=4.0, jitter=0.2)
CONFIG = IngestConfig(open_timeout_ms=1000, read_timeout_ms=int(READ_TIMEOUT_S * 1000), backoff=BACKOFF)
FPS = 5.0


@dataclass
class MjpegCamera:
    """An HTTP camera sending a multipart JPEG stream at 10 frames/s; ``mode``: serve, freeze or down."""

    port: int = 0
    mode: str = "serve"
    server: http.server.ThreadingHTTPServer | None = None
    frame: bytes = field(
        default_factory=lambda: cv2.imencode(".jpg", np.full((90, 160, 3), 90, np.uint8))[1].tobytes()
    )

    def start(self) -> None:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(
                    camera.frame
                )
                try:
                    while camera.mode != "down":
                        if camera.mode == "serve":
                            self.wfile.write(part + camera.frame + b"\r\n")
                            self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.mode = "serve"
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        """Close the listening socket and every open connection."""
        self.mode = "down"
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"


@pytest.fixture
def cameras() -> Iterator[tuple[MjpegCamera, MjpegCamera]]:
    faulty, healthy = MjpegCamera(), MjpegCamera()
    faulty.start()
    healthy.start()
    yield faulty, healthy
    for cam in (faulty, healthy):
        if cam.mode != "down":
            cam.kill()


def _wait(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not reached within {timeout:.1f} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_frozen_killed_and_flapping_camera_recovers_and_the_other_is_unaffected(
    cameras: tuple[MjpegCamera, MjpegCamera], redis_url: str, redis_prefix: str
) -> None:
    if redis_prefix and "unix://" not in redis_url:
        pytest.skip("the Redis server is not what is tested here: the embedded one is enough")
    faulty, healthy = cameras
    client = connect_redis(redis_url)
    stop = threading.Event()
    publisher = FramePublisher(client, redis_url, StreamNames(redis_prefix), 10_000, stop)
    published: dict[str, list[float]] = {"faulty": [], "healthy": []}

    def publish_as(name: str) -> Callable[[FrameMessage], None]:
        def publish(message: FrameMessage) -> None:
            publisher(message)
            published[name].append(time.monotonic())

        return publish

    readers = {
        "faulty": CameraReader(CameraSpec("store", "faulty", faulty.url, FPS), CONFIG, publish_as("faulty")),
        "healthy": CameraReader(
            CameraSpec("store", "healthy", healthy.url, FPS), CONFIG, publish_as("healthy")
        ),
    }
    threads = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in readers.values()]
    for thread in threads:
        thread.start()
    reader = readers["faulty"]

    def frames_after(moment: float) -> bool:
        return any(t > moment for t in published["faulty"])

    figures: dict[str, float] = {}
    try:
        _wait(lambda: len(published["faulty"]) >= 3 and len(published["healthy"]) >= 3, 15)
        healthy_started = time.monotonic()
        # frozen: connection open, no data
        faulty.mode = "freeze"
        figures["frozen: offline after s"] = _wait(lambda: reader.status.state != "online", 5)
        time.sleep(1.5)
        faulty.mode = "serve"
        resumed = time.monotonic()
        figures["frozen: resumed after s"] = _wait(lambda: frames_after(resumed), 10)
        # killed: connection and listening socket gone; restarted on the same port 3 s later
        killed = time.monotonic()
        faulty.kill()
        _wait(lambda: reader.status.state != "online", 5)
        figures["killed: offline after s"] = time.monotonic() - killed
        time.sleep(max(0.0, 3.0 - (time.monotonic() - killed)))
        faulty.start()
        restarted = time.monotonic()
        figures["killed: resumed after s"] = _wait(lambda: frames_after(restarted), 15)
        time.sleep(1.0)
        # a short blip later on: the backoff starts over, recovery is quick again
        faulty.mode = "freeze"
        _wait(lambda: reader.status.state != "online", 5)
        faulty.mode = "serve"
        blip = time.monotonic()
        figures["blip: resumed after s"] = _wait(lambda: frames_after(blip), 10)
        healthy_span = time.monotonic() - healthy_started
        healthy_frames = sum(1 for t in published["healthy"] if t > healthy_started)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        client.close()
    shown = {k: round(v, 2) for k, v in figures.items()}
    print(f"\ncamera faults: {shown}; healthy camera: {healthy_frames} frames in {healthy_span:.1f} s "
          f"at {FPS:g} fps, errors {readers['healthy'].status.errors}")  # fmt: skip
    assert figures["frozen: offline after s"] <= READ_TIMEOUT_S + 0.5
    assert figures["killed: offline after s"] <= READ_TIMEOUT_S + 0.5
    cap = BACKOFF.cap_s * (1 + BACKOFF.jitter)
    for phase in ("frozen", "killed"):
        assert figures[f"{phase}: resumed after s"] <= cap + 1.5, phase
    assert figures["blip: resumed after s"] <= 4 * BACKOFF.base_s * (1 + BACKOFF.jitter) + 1.5
    assert readers["healthy"].status.errors == 0
    assert healthy_frames >= 0.8 * FPS * healthy_span
    assert readers["faulty"].seq == len(published["faulty"]), (
        "sequence numbers keep counting across reconnects"
    )
