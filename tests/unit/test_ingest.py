"""Ingest without servers: source types, backoff, frame sampling, JPEG, and camera readers on real files."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodstream.ingest.backoff import BackoffPolicy
from moodstream.ingest.camera import CameraReader, IngestConfig
from moodstream.ingest.sampling import SamplingError, sample_file
from moodstream.ingest.sources import CameraSpec, SourceError, open_capture, source_type
from moodstream.schemas.jpeg import JpegError, decode_jpeg, encode_jpeg
from moodstream.schemas.messages import FrameMessage

FAST = IngestConfig(realtime=False, backoff=BackoffPolicy(base_s=0.05, cap_s=0.2), open_timeout_ms=1000)


def write_counter_video(path: Path, frames: int, fps: float = 10.0) -> Path:
    """A small mp4 whose frame i is uniformly grey level 8*i (so a sampled frame tells its index)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 8 * i, np.uint8))
    writer.release()
    return path


def frame_index(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / 8)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("0", "webcam"),
        ("rtsp://user:pw@10.0.0.1/stream1", "stream"),
        ("RTSPS://10.0.0.1/s", "stream"),
        ("http://cam.local/mjpeg", "stream"),
        ("https://cam.local/live.m3u8", "stream"),
        ("videos/counter.mp4", "file"),
        ("/abs/path/cam 1.gif", "file"),
    ],
)
def test_source_type(source: str, kind: str) -> None:
    assert source_type(source) == kind


def test_backoff_grows_exponentially_and_is_capped_with_jitter() -> None:
    policy = BackoffPolicy(base_s=0.5, cap_s=8.0, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(12)]
    for n, delay in enumerate(delays):
        nominal = min(8.0, 0.5 * 2**n)
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert max(delays) <= 8.0 * 1.2
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jitter spreads the capped delays


def test_sampling_picks_frames_by_video_time(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "counter.mp4", frames=30, fps=10.0)
    picked = [frame_index(frame) for _, frame in sample_file(video, fps=2.0)]
    assert picked == [0, 5, 10, 15, 20, 25]
    every = [frame_index(frame) for _, frame in sample_file(video, fps=10.0)]
    assert every == list(range(30))


def test_sampling_faster_than_the_video_gives_every_frame_once(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "counter.mp4", frames=12, fps=10.0)
    assert [frame_index(f) for _, f in sample_file(video, fps=50.0)] == list(range(12))


@pytest.mark.parametrize("fps", [0.0, -1.0, 5000.0])
def test_sampling_rejects_bad_fps(tmp_path: Path, fps: float) -> None:
    video = write_counter_video(tmp_path / "counter.mp4", frames=3)
    with pytest.raises(SamplingError, match="fps: expected a number in"):
        list(sample_file(video, fps))


def test_open_missing_file_and_unreachable_stream_raise_source_error_without_password() -> None:
    with pytest.raises(SourceError, match="video file not found"):
        open_capture("/nonexistent/cam.mp4")
    with pytest.raises(SourceError) as info:
        open_capture("rtsp://admin:s3cret-pw@127.0.0.1:1/stream", open_timeout_ms=500, read_timeout_ms=500)
    assert "s3cret-pw" not in str(info.value)
    assert "admin:***@127.0.0.1:1" in str(info.value)


def test_jpeg_round_trip_and_bad_input() -> None:
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[5:15, 5:25] = (10, 200, 90)
    decoded = decode_jpeg(encode_jpeg(frame, 95))
    assert decoded is not None and decoded.shape == (20, 30, 3)
    assert np.abs(decoded[10, 15].astype(int) - (10, 200, 90)).max() <= 12  # inside the patch
    assert np.abs(decoded.astype(int) - frame.astype(int)).mean() < 10
    assert decode_jpeg(b"\xff\xd8 not really a jpeg") is None
    with pytest.raises(JpegError, match="expected a non-empty uint8"):
        encode_jpeg(np.zeros((4, 4, 3), np.float32), 90)


def _reader(spec: CameraSpec, config: IngestConfig = FAST) -> tuple[CameraReader, list[FrameMessage]]:
    published: list[FrameMessage] = []
    return CameraReader(spec, config, published.append), published


def test_file_camera_publishes_each_sample_once_then_finishes(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "v.mp4", frames=20)
    reader, published = _reader(CameraSpec("s1", "cam", str(video), fps=5.0))
    reader.run(threading.Event())
    assert reader.status.state == "finished"
    assert [m.key.seq for m in published] == list(range(10))
    assert {m.key.stream_epoch for m in published} == {reader.epoch}
    decoded = [decode_jpeg(m.jpeg) for m in published]
    assert [frame_index(f) for f in decoded if f is not None] == list(range(0, 20, 2))


def test_looping_file_keeps_counting_sequence_numbers_until_stopped(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "v.mp4", frames=5)
    reader, published = _reader(CameraSpec("s1", "cam", str(video), fps=10.0, loop=True))
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 20
    while len(published) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    seqs = [m.key.seq for m in published]
    assert len(seqs) >= 12 and seqs == list(range(len(seqs)))
    assert reader.status.state == "stopped"


def test_camera_retries_a_missing_source_with_backoff_and_resumes_when_it_appears(tmp_path: Path) -> None:
    original = write_counter_video(tmp_path / "orig.mp4", frames=6)
    target = tmp_path / "late.mp4"
    reader, published = _reader(CameraSpec("s1", "cam", str(target), fps=10.0))
    thread = threading.Thread(target=reader.run, args=(threading.Event(),))
    thread.start()
    deadline = time.monotonic() + 10
    while reader.status.errors < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.status.errors >= 2 and reader.status.state in ("reconnecting", "connecting")
    assert "video file not found" in reader.status.last_error
    shutil.copy(original, target)
    thread.join(20)
    assert reader.status.state == "finished"
    assert [m.key.seq for m in published] == list(range(6))


def test_realtime_file_camera_is_paced_at_video_speed(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "v.mp4", frames=10, fps=10.0)  # 1 s of video
    reader, published = _reader(CameraSpec("s1", "cam", str(video), fps=5.0), IngestConfig(realtime=True))
    started = time.monotonic()
    reader.run(threading.Event())
    elapsed = time.monotonic() - started
    assert len(published) == 5
    assert elapsed >= 0.7  # samples at 0.0, 0.2 ... 0.8 s of video time
    gaps = np.diff([m.captured_ms for m in published])
    assert gaps.min() >= 150  # 200 ms apart, never a burst


QUERY_PASSWORD_REGISTRY = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: UTC
    cameras:
      - id: query-cam
        source: http://127.0.0.1:1/snapshot.cgi?user=admin&code=${CAM_CODE}
        fps: 2
      - id: short-cam
        source: rtsp://u:${CAM_PASS}@127.0.0.1:1/stream1
        fps: 2
"""


def test_ingest_masks_the_registry_secrets_in_sources_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moodstream.runtime.processes import load_camera_specs

    path = tmp_path / "stores.yaml"
    path.write_text(QUERY_PASSWORD_REGISTRY)
    monkeypatch.setenv("CAM_CODE", "Zq7-x9")
    monkeypatch.setenv("CAM_PASS", "p")
    query, short = load_camera_specs(path)
    assert query.redacted_source == "http://127.0.0.1:1/snapshot.cgi?user=admin&code=***"
    assert short.redacted_source == "rtsp://u:***@127.0.0.1:1/stream1"  # not rts***://
    reader, published = _reader(query)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,))
    thread.start()
    try:
        assert _wait(lambda: reader.status.errors >= 1, 20)
    finally:
        stop.set()
        thread.join(10)
    assert published == []
    assert reader.status.last_error and "Zq7" not in reader.status.last_error
    assert "code=***" in reader.status.last_error


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
