"""Ingest follows opening hours on a real Redis: a camera is read while its store is open, stopped and shown
``closed`` (with the time it opens) when the store closes, and read again, as a new stream epoch, when it
opens; a registry edit of the hours alone does not restart an open camera. The clock is the supervisor's
own (injected), the camera a real video file."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from moodstream.common.health import HealthState
from moodstream.common.lease import lease_key
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest import FramePublisher, IngestConfig, IngestSupervisor
from moodstream.ingest.backoff import BackoffPolicy
from moodstream.runtime.processes import load_camera_specs
from moodstream.schemas.messages import FrameMessage
from tests.integration.helpers import xrange_all

CONFIG = IngestConfig(
    reload_interval_s=0.1,
    open_timeout_ms=1000,
    read_timeout_ms=1000,
    backoff=BackoffPolicy(base_s=0.1, cap_s=0.4),
)
MONDAY_0859 = datetime(2026, 12, 7, 1, 59, tzinfo=UTC)  # 08:59 in Hanoi (UTC+7)

REGISTRY = """\
version: 1
stores:
  - id: hn
    branch: b
    timezone: Asia/Ho_Chi_Minh
    hours:
      weekly:
        mon: ["{mon}"]
    cameras:
      - {{id: cam, source: {video}, fps: 10, loop: true}}
"""


class Clock:
    """The supervisor's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect_redis(redis_url)
    yield c
    c.close()


def test_cameras_stop_when_the_store_closes_and_restart_when_it_opens(
    client: redis.Redis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    registry = tmp_path / "stores.yaml"
    registry.write_text(REGISTRY.format(mon="09:00-10:00", video=video))
    names = StreamNames(redis_prefix)
    clock = Clock(MONDAY_0859)
    stop = threading.Event()
    health = HealthState(stale_after_s=30)
    publisher = FramePublisher(client, redis_url, names, 10_000, stop)
    supervisor = IngestSupervisor(
        registry, load_camera_specs, client, publisher, names, CONFIG, health=health, clock=clock
    )
    thread = threading.Thread(target=supervisor.run, args=(stop, load_camera_specs(registry)))
    thread.start()

    def state() -> dict[str, Any]:
        raw: Any = client.hget(names.cameras, "hn/cam")
        return json.loads(raw) if raw else {}

    def epochs() -> list[int]:
        entries = xrange_all(client, names.frames)
        return sorted({FrameMessage.decode(fields).key.stream_epoch for _, fields in entries})

    try:
        # before opening: nothing read, shown closed until 09:00 local, and ingest itself is ready
        assert wait_until(lambda: state().get("state") == "closed")
        assert state()["opens"] == "2026-12-07T09:00+07:00" and epochs() == []
        assert wait_until(lambda: health.readiness().ready)
        # 09:00: the camera is read
        clock.now = MONDAY_0859 + timedelta(minutes=1)
        assert wait_until(lambda: state().get("state") == "online" and len(epochs()) == 1)
        # an edit of the hours alone does not restart the open camera
        registry.write_text(REGISTRY.format(mon="09:00-11:00", video=video))
        stamp = time.time() + 1
        os.utime(registry, (stamp, stamp))  # a distinct mtime even on coarse file systems
        assert wait_until(lambda: supervisor.running["hn", "cam"].spec.hours is not None and (
            supervisor.running["hn", "cam"].spec.hours.weekly.mon == ("09:00-11:00",)))  # fmt: skip
        assert len(epochs()) == 1 and state()["state"] == "online"
        # 11:00: closed again (opens next Monday), no frame published after the close
        clock.now = MONDAY_0859 + timedelta(hours=2, minutes=1)
        assert wait_until(lambda: state().get("state") == "closed")
        assert state()["opens"] == "2026-12-14T09:00+07:00"
        count = len(xrange_all(client, names.frames))
        time.sleep(0.5)
        assert len(xrange_all(client, names.frames)) == count and len(epochs()) == 1
        # next Monday 09:00: read again, as a new stream epoch
        clock.now = MONDAY_0859 + timedelta(days=7, minutes=1)
        assert wait_until(lambda: len(epochs()) == 2)
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()


def test_hours_and_leases_together_a_closed_camera_holds_no_lease_and_no_standby(
    client: redis.Redis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Two ingests on one registry: a camera runs only while its store is open AND its ingest holds the
    lease; the other ingest waits in standby; when the store closes the reader stops, its lease is released
    and the standby entry goes (both show ``closed``)."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    registry = tmp_path / "stores.yaml"
    registry.write_text(REGISTRY.format(mon="09:00-10:00", video=video))
    names = StreamNames(redis_prefix)
    lease = lease_key(names, "ingest:hn/cam")
    clock = Clock(MONDAY_0859)
    stop = threading.Event()
    config = CONFIG.model_copy(update={"lease_ms": 1000})
    publisher = FramePublisher(client, redis_url, names, 10_000, stop)
    supervisors = [
        IngestSupervisor(
            registry, load_camera_specs, client, publisher, names, config, clock=clock, owner=owner
        )
        for owner in ("ingest-a", "ingest-b")
    ]
    threads = [threading.Thread(target=s.run, args=(stop, load_camera_specs(registry))) for s in supervisors]
    for thread in threads:
        thread.start()
    try:
        # closed: nobody reads, nobody holds the lease, nobody waits
        assert wait_until(lambda: all(("hn", "cam") in s.closed for s in supervisors))
        assert client.get(lease) is None and not client.hgetall(names.standby)
        assert not any(s.all_finished() for s in supervisors)
        # open: exactly one reads (the lease holder), the other waits in standby
        clock.now = MONDAY_0859 + timedelta(minutes=1)
        assert wait_until(lambda: sum(bool(s.running) for s in supervisors) == 1)
        assert wait_until(lambda: sum(bool(s.waiting) for s in supervisors) == 1)
        reader = next(s for s in supervisors if s.running)
        standby = next(s for s in supervisors if s.waiting)
        assert client.get(lease) == reader.owner.encode()
        assert wait_until(lambda: len(client.hgetall(names.standby)) == 1)
        assert not standby.all_finished()
        # closed again: the reader stops and releases the lease, the standby entry goes
        clock.now = MONDAY_0859 + timedelta(hours=1, minutes=1)
        assert wait_until(lambda: all(("hn", "cam") in s.closed and not s.running for s in supervisors))
        assert not any(s.waiting for s in supervisors)
        assert client.get(lease) is None and not client.hgetall(names.standby)
        raw: Any = client.hget(names.cameras, "hn/cam")
        assert json.loads(raw)["state"] == "closed"
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
