"""Two ingest supervisors on one registry and one real Redis: each camera is read by one of them only (its
lease); the other waits, says so in ``moodstream status``, and takes the cameras over when the first stops;
a reader whose lease was taken (its ingest stalled) stops instead of reading beside the new holder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from moodstream.cli.status import collect_status
from moodstream.common.lease import lease_key
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest import FramePublisher, IngestConfig, IngestSupervisor
from moodstream.ingest.backoff import BackoffPolicy
from moodstream.runtime.processes import load_camera_specs
from moodstream.schemas.messages import FrameMessage
from tests.integration.test_faults import wait_until
from tests.integration.test_ingest_supervisor import registry_text, write_video

CONFIG = IngestConfig(
    reload_interval_s=0.1,
    open_timeout_ms=1000,
    read_timeout_ms=1000,
    backoff=BackoffPolicy(base_s=0.1, cap_s=0.4),
    lease_ms=1000,
)
CAMERAS = ("s1/cam-a", "s1/cam-b")


class Ingest:
    """One ingest supervisor (its own Redis connection and publisher) running in a thread."""

    def __init__(self, redis_url: str, names: StreamNames, registry: Path, owner: str) -> None:
        self.client = connect_redis(redis_url)
        self.stop = threading.Event()
        publisher = FramePublisher(self.client, redis_url, names, 100_000, self.stop)
        self.supervisor = IngestSupervisor(
            registry, load_camera_specs, self.client, publisher, names, CONFIG, owner=owner
        )
        self.thread = threading.Thread(
            target=self.supervisor.run, args=(self.stop, load_camera_specs(registry))
        )
        self.thread.start()

    def reading(self) -> set[str]:
        return {r.spec.label for r in self.supervisor.running.values() if r.thread.is_alive()}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.client.close()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    videos = {c: write_video(tmp_path / f"{c}.mp4") for c in ("cam-a", "cam-b")}
    path = tmp_path / "stores.yaml"
    path.write_text(registry_text(videos))
    return path


@pytest.fixture
def names(redis_prefix: str) -> StreamNames:
    return StreamNames(redis_prefix)


def epochs(client: redis.Redis, names: StreamNames) -> dict[str, set[int]]:
    """Camera label -> the stream epochs of its frames on the frames stream (one per reader started)."""
    entries: Any = client.xrange(names.frames)
    out: dict[str, set[int]] = {}
    for _, fields in entries:
        key = FrameMessage.decode(fields).key
        out.setdefault(f"{key.store_id}/{key.camera_id}", set()).add(key.stream_epoch)
    return out


def cameras_in_status(redis_url: str, names: StreamNames) -> dict[str, tuple[str, int]]:
    status = collect_status(redis_url, None, names.prefix)
    return {c["label"]: (c["ingest"], c["waiting"]) for c in status["cameras"]}


def test_a_second_ingest_waits_shows_it_and_takes_over_when_the_first_stops(
    redis_url: str, names: StreamNames, registry: Path
) -> None:
    client = connect_redis(redis_url)
    first = Ingest(redis_url, names, registry, "ingest-first")
    second: Ingest | None = None
    try:
        wait_until(lambda: first.reading() == set(CAMERAS), 10)
        second = Ingest(redis_url, names, registry, "ingest-second")
        wait_until(lambda: set(cameras_in_status(redis_url, names)) == set(CAMERAS), 10)
        wait_until(lambda: all(w == 1 for _, w in cameras_in_status(redis_url, names).values()), 10)
        frames_before = int(client.xlen(names.frames))
        wait_until(lambda: int(client.xlen(names.frames)) > frames_before + 10, 10)
        assert second.reading() == set() and set(second.supervisor.waiting) == {
            ("s1", "cam-a"),
            ("s1", "cam-b"),
        }
        assert all(len(e) == 1 for e in epochs(client, names).values()), "one reader per camera"
        assert cameras_in_status(redis_url, names) == dict.fromkeys(CAMERAS, ("ingest-first", 1))

        first.close()  # releases the leases: the second takes over at its next tick
        took = wait_until(lambda: second is not None and second.reading() == set(CAMERAS), 5)
        print(f"\ntwo ingests: the second read nothing while the first ran; took both cameras over "
              f"{took:.2f} s after the first stopped")  # fmt: skip
        wait_until(
            lambda: cameras_in_status(redis_url, names) == dict.fromkeys(CAMERAS, ("ingest-second", 0)), 5
        )
        # taken over as a new stream epoch (once each new reader has published its first frame)
        wait_until(lambda: [len(e) for e in epochs(client, names).values()] == [2, 2], 10)
    finally:
        for ingest in (first, second):
            if ingest is not None and ingest.thread.is_alive():
                ingest.close()
        client.close()


def test_a_reader_whose_lease_was_taken_stops_and_its_camera_waits(
    redis_url: str, names: StreamNames, registry: Path
) -> None:
    client = connect_redis(redis_url)
    ingest = Ingest(redis_url, names, registry, "ingest-stalled")
    try:
        wait_until(lambda: ingest.reading() == set(CAMERAS), 10)
        key = lease_key(names, "ingest:s1/cam-a")
        client.set(key, "ingest-successor", px=60_000)  # as if this ingest had stalled past lease_ms
        stopped = wait_until(lambda: ("s1", "cam-a") in ingest.supervisor.waiting, 5)
        print(f"\nlease taken: the reader stopped and its camera waited {stopped:.2f} s later")
        assert ingest.reading() == {"s1/cam-b"}
        assert cameras_in_status(redis_url, names)["s1/cam-a"][1] == 1, "shown as waiting"
        client.delete(key)  # the successor stops: this ingest takes the camera back
        wait_until(lambda: ingest.reading() == set(CAMERAS), 5)
    finally:
        ingest.close()
        client.close()
