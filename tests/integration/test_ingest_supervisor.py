"""The ingest supervisor on a real Redis: live registry edits, a bad edit kept out, a vanishing source,
and shed frames counted when the frames stream cap trims unread entries."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest import FramePublisher, IngestConfig, IngestSupervisor
from moodstream.ingest.backoff import BackoffPolicy
from moodstream.runtime.processes import load_camera_specs
from moodstream.schemas.messages import DeadLetter, FrameKey, FrameMessage
from tests.integration.helpers import xrange_all

CONFIG = IngestConfig(
    reload_interval_s=0.1,
    open_timeout_ms=1000,
    read_timeout_ms=1000,
    backoff=BackoffPolicy(base_s=0.1, cap_s=0.4),
)


def write_video(path: Path, frames: int = 10, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    return path


def registry_text(cameras: dict[str, Path], fps: float = 10.0) -> str:
    lines = ["version: 1", "stores:", "  - id: s1", "    branch: b", "    timezone: UTC", "    cameras:"]
    for camera, video in cameras.items():
        lines += [
            f"      - id: {camera}",
            f"        source: {video}",
            f"        fps: {fps}",
            "        loop: true",
        ]
    return "\n".join(lines) + "\n"


def rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))  # a distinct mtime even on coarse file systems


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect_redis(redis_url)
    yield c
    c.close()


class Running:
    def __init__(self, client: redis.Redis, redis_url: str, names: StreamNames, registry: Path) -> None:
        self.stop = threading.Event()
        publisher = FramePublisher(client, redis_url, names, 10_000, self.stop)
        self.supervisor = IngestSupervisor(registry, load_camera_specs, client, publisher, names, CONFIG)
        self.thread = threading.Thread(
            target=self.supervisor.run, args=(self.stop, load_camera_specs(registry))
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


def frames_of(client: redis.Redis, names: StreamNames, camera: str) -> int:
    value = client.hget(names.stats("ingest"), f"s1/{camera}:frames_out")
    return int(value or 0)


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_registry_edits_apply_without_restart_and_a_bad_edit_keeps_the_running_config(
    client: redis.Redis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    names = StreamNames(redis_prefix)
    video = write_video(tmp_path / "v.mp4")
    registry = tmp_path / "stores.yaml"
    registry.write_text(registry_text({"door": video}))
    running = Running(client, redis_url, names, registry)
    try:
        eventually(lambda: frames_of(client, names, "door") > 3)
        rewrite(registry, registry_text({"door": video, "till": video}))
        eventually(lambda: frames_of(client, names, "till") > 3)
        door_epoch = running.supervisor.running[("s1", "door")].reader.epoch
        rewrite(registry, registry_text({"door": video, "till": video}) + "  - id: BAD STORE\n")
        time.sleep(0.5)
        assert set(running.supervisor.running) == {("s1", "door"), ("s1", "till")}
        assert running.supervisor.running[("s1", "door")].reader.epoch == door_epoch  # untouched
        rewrite(registry, registry_text({"till": video}, fps=5.0))  # door removed, till edited
        eventually(lambda: set(running.supervisor.running) == {("s1", "till")})
        eventually(lambda: running.supervisor.running[("s1", "till")].spec.fps == 5.0)
        stopped_at = frames_of(client, names, "door")
        time.sleep(0.5)
        assert frames_of(client, names, "door") == stopped_at
    finally:
        running.close()


def test_a_camera_whose_source_disappears_and_returns_resumes_without_touching_the_others(
    client: redis.Redis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    names = StreamNames(redis_prefix)
    flaky = write_video(tmp_path / "flaky.mp4", frames=5)
    steady = write_video(tmp_path / "steady.mp4", frames=5)
    registry = tmp_path / "stores.yaml"
    registry.write_text(registry_text({"flaky": flaky, "steady": steady}))
    running = Running(client, redis_url, names, registry)
    try:
        eventually(lambda: frames_of(client, names, "flaky") > 3)
        hidden = flaky.rename(tmp_path / "hidden.mp4")
        flaky_reader = running.supervisor.running[("s1", "flaky")].reader
        eventually(lambda: flaky_reader.status.errors >= 2)
        eventually(lambda: json.loads(client.hget(names.cameras, "s1/flaky") or b"{}").get("errors", 0) >= 1)
        assert "video file not found" in flaky_reader.status.last_error
        steady_before = frames_of(client, names, "steady")
        flaky_before = frames_of(client, names, "flaky")
        time.sleep(0.6)
        assert frames_of(client, names, "steady") >= steady_before + 3  # the other camera keeps going
        assert frames_of(client, names, "flaky") == flaky_before
        hidden.rename(flaky)
        eventually(lambda: frames_of(client, names, "flaky") > flaky_before + 3)
        seqs = [
            FrameMessage.decode(f).key.seq
            for _, f in xrange_all(client, names.frames)
            if b"flaky" in f[b"camera"]
        ]
        assert seqs == list(range(len(seqs)))  # one epoch, no gap, no repeat across the outage
    finally:
        running.close()


def test_frames_trimmed_before_any_detector_read_them_are_counted_as_shed(
    client: redis.Redis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    names = StreamNames(redis_prefix)
    stop = threading.Event()
    publisher = FramePublisher(client, redis_url, names, maxlen=10, stop=stop)
    client.xgroup_create(names.frames, "detector", id="0", mkstream=True)
    for seq in range(300):
        publisher(FrameMessage(FrameKey("s1", "cam", 5, seq), 1000 + seq, b"jpeg"))
    remaining = client.xlen(names.frames)
    shed = publisher.account_shed()
    assert shed == 300 - remaining and shed > 0
    letters = [DeadLetter.decode(f) for _, f in xrange_all(client, names.dead)]
    assert {letter.loss for letter in letters} == {"shed"}
    assert sorted(letter.key.seq for letter in letters if letter.key) == list(range(shed))
    assert client.hget(names.stats("ingest"), "s1/cam:shed") == str(shed).encode()
    assert publisher.account_shed() == 0  # each frame once


def test_frames_trimmed_while_a_worker_held_them_are_shed_but_finished_ones_are_not(
    client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    publisher = FramePublisher(client, redis_url, names, maxlen=100_000, stop=threading.Event())
    client.xgroup_create(names.frames, "detector", id="0", mkstream=True)
    for seq in range(10):
        publisher(FrameMessage(FrameKey("s1", "cam", 5, seq), 1000 + seq, b"jpeg"))
    read: Any = client.xreadgroup("detector", "w1", {names.frames: ">"}, count=6)
    done = [entry_id for entry_id, _ in read[0][1][:4]]
    client.xack(names.frames, "detector", *done)  # seq 0-3 finished, 4-5 held by a worker, 6-9 unread
    client.xtrim(names.frames, maxlen=0)
    assert publisher.account_shed() == 6
    shed = sorted(DeadLetter.decode(f).key.seq for _, f in xrange_all(client, names.dead))  # type: ignore[union-attr]
    assert shed == [4, 5, 6, 7, 8, 9]
