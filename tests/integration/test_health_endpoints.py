"""/healthz, /readyz and /metrics of real stage processes (`moodstream ingest`, `track`, `aggregate`
started through the CLI) on a real Redis that the test stops and restarts, and ingest following opening
hours: a closed store's camera is not read and says so.

The Prometheus rules file may only name metrics that these running stages really export.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.embedded import EmbeddedRedis
from moodstream.runtime.progress import camera_progress
from moodstream.schemas.messages import FrameMessage
from tests.alert_rules import exported_names, prometheus_metric_names
from tests.integration.helpers import stage_env, xrange_all

STAGES = ("ingest", "track", "aggregate")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of GET http://127.0.0.1:port/path (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def reachable(port: int) -> bool:
    try:
        get(port, "/healthz")
    except OSError:
        return False
    return True


def wait_for(condition: Callable[[], bool], timeout: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs.glob("*.log"))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


REGISTRY = """\
version: 1
stores:
  - id: open
    branch: b
    timezone: UTC
    cameras:
      - {{id: cam, source: {video}, fps: 5, loop: true}}
  - id: shut
    branch: b
    timezone: Asia/Ho_Chi_Minh
    hours:
      weekly: {{}}
      exceptions: [{{date: 2026-01-01, hours: ["10:00-11:00"]}}]
    cameras:
      - {{id: cam, source: {video}, fps: 5, loop: true}}
"""


@pytest.fixture
def stages(
    server_dir: Path, migrated_database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[EmbeddedRedis, dict[str, int], Path]]:
    """ingest, track and aggregate processes on a private embedded Redis, each with its own port."""
    if request.node.callspec.params.get("admin_database_url") == "external":
        pytest.skip("stage processes on a private Redis: one database kind is enough")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    registry = tmp_path / "stores.yaml"
    registry.write_text(REGISTRY.format(video=video))
    server = EmbeddedRedis(server_dir)
    url = server.start()
    env = stage_env(url, migrated_database_url, "health:")
    env.pop("MOODSTREAM_METRICS_ADDRESS", None)  # the default: this host only
    ports = {stage: free_port() for stage in STAGES}
    procs = []
    for stage, port in ports.items():
        argv = [
            sys.executable,
            "-m",
            "moodstream.cli.app",
            stage,
            "-c",
            str(registry),
            "--metrics-port",
            str(port),
        ]
        with (tmp_path / f"{stage}.log").open("wb") as log:
            procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        yield server, ports, tmp_path
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


def ready(port: int) -> bool:
    return reachable(port) and get(port, "/readyz")[0] == 200


def test_probes_follow_redis_and_ingest_follows_opening_hours(
    stages: tuple[EmbeddedRedis, dict[str, int], Path],
) -> None:
    server, ports, logs = stages
    for stage, port in ports.items():
        wait_for(lambda port=port: ready(port), 60, f"{stage} /readyz 200", logs)  # type: ignore[misc]
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/nothing")[0] == 404
        assert listening_addresses(port) == {"127.0.0.1"}  # not 0.0.0.0 outside containers
    body = json.loads(get(ports["track"], "/readyz")[1])
    assert body["ready"] is True and body["last_beat_age_s"] < 60

    # ingest reads the open store's camera and not the closed one's, and says why
    client = connect_redis(server.url)
    names = StreamNames("health:")

    def camera_state(label: str) -> dict[str, Any]:
        raw = client.hget(names.cameras, label)
        return json.loads(raw) if raw else {}

    wait_for(lambda: int(camera_state("open/cam").get("frames", 0)) > 0, 30, "frames of open/cam", logs)
    assert camera_state("shut/cam")["state"] == "closed" and camera_state("shut/cam")["frames"] == 0
    shown = {row.label: row.state for row in camera_progress(client, names)}  # `moodstream status`, live view
    assert shown["shut/cam"] == "closed (opening hours)" and shown["open/cam"] == "online"
    metrics = get(ports["ingest"], "/metrics")[1]
    assert 'moodstream_camera_open{camera="cam",store="open"} 1.0' in metrics
    assert 'moodstream_camera_open{camera="cam",store="shut"} 0.0' in metrics
    assert 'moodstream_camera_up{camera="cam",store="open"} 1.0' in metrics
    assert 'moodstream_frames_out_total{camera="cam",stage="ingest",store="open"}' in metrics
    assert 'moodstream_camera_last_frame_timestamp_seconds{camera="cam",store="open"}' in metrics
    kept = ("moodstream_camera_open", "moodstream_shed")  # a closed camera has no reader: no frames, no time
    assert 'store="shut"' not in "".join(line for line in metrics.splitlines() if not line.startswith(kept))
    entries = xrange_all(client, names.frames)
    assert {FrameMessage.decode(fields).key.store_id for _, fields in entries} == {"open"}

    # every metric the Prometheus rules name is exported by one of the running stages
    exported = set().union(*(exported_names(get(port, "/metrics")[1]) for port in ports.values()))
    missing = prometheus_metric_names() - exported
    assert not missing, f"the Prometheus rules name metrics no stage exports: {sorted(missing)}"

    # Redis gone: every stage stays alive but is not ready; Redis back: ready again
    client.close()
    server.stop()
    stopped = time.monotonic()
    for stage, port in ports.items():
        wait_for(lambda port=port: get(port, "/readyz")[0] == 503, 20, f"{stage} /readyz 503", logs)  # type: ignore[misc]
        assert get(port, "/healthz")[0] == 200
    reason = json.loads(get(ports["aggregate"], "/readyz")[1])["reason"]
    assert "Redis" in reason or "unreachable" in reason or "progress" in reason, reason
    not_ready_after = time.monotonic() - stopped
    server.start()
    restarted = time.monotonic()
    for stage, port in ports.items():
        wait_for(lambda port=port: ready(port), 60, f"{stage} ready again", logs)  # type: ignore[misc]
    print(f"\nRedis stopped: all 3 stages 503 within {not_ready_after:.1f} s; ready again"
          f" {time.monotonic() - restarted:.1f} s after the restart")  # fmt: skip


def test_aggregator_without_postgres_is_alive_not_ready_and_names_no_password(
    redis_url: str, redis_prefix: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params.get("redis_url") == "external":
        pytest.skip("the missing PostgreSQL is the point: one Redis kind is enough")
    port, closed = free_port(), free_port()  # nothing listens on `closed`
    env = stage_env(redis_url, f"postgresql://writer:Sntl-pw-9Qx@127.0.0.1:{closed}/moodstream", redis_prefix)
    argv = [sys.executable, "-m", "moodstream.cli.app", "aggregate", "--metrics-port", str(port)]
    with (tmp_path / "aggregate.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: reachable(port) and "PostgreSQL" in get(port, "/readyz")[1], 30, "503", tmp_path)
        status, body = get(port, "/readyz")
        assert status == 503 and f"127.0.0.1:{closed}/moodstream" in body and "Sntl-pw" not in body
        assert get(port, "/healthz") == (200, "ok\n")
    finally:
        proc.terminate()
        proc.wait(20)
