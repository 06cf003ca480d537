"""Recorded footage without servers: a camera's ``start`` in stores.yaml, the container's creation time, and
a footage reader's capture times, frame identities and progress."""

from __future__ import annotations

import struct
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moodstream.ingest import CameraReader, CameraSpec, IngestConfig, container_creation_ms
from moodstream.ingest.footage import MP4_EPOCH_OFFSET_S
from moodstream.ingest.sampling import sample_file
from moodstream.schemas.messages import FrameMessage
from moodstream.schemas.registry import RegistryError, load_registry
from tests.unit.test_ingest import write_counter_video

START = datetime(2026, 3, 1, 9, 59, 58, tzinfo=UTC)
START_MS = round(START.timestamp() * 1000)


def _with_creation_time(source: Path, target: Path, created: datetime) -> Path:
    """A copy of ``source`` whose movie header (version 0) says it was created at ``created``."""
    data = bytearray(source.read_bytes())
    at = data.index(b"mvhd") + 4  # version(1) flags(3) creation(4)
    assert data[at] == 0, "version-0 movie header expected"
    struct.pack_into(">I", data, at + 4, round(created.timestamp()) + MP4_EPOCH_OFFSET_S)
    target.write_bytes(bytes(data))
    return target


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_creation_time_is_read_from_the_movie_header(shared_data: Path, tmp_path: Path) -> None:
    original = shared_data / "video" / "facenet-pytorch-video.mp4"
    assert container_creation_ms(original) is None  # it records 0: no creation time
    patched = _with_creation_time(original, tmp_path / "v.mp4", START)
    assert container_creation_ms(patched) == START_MS


def test_creation_time_of_a_version_1_header_after_a_64_bit_box(tmp_path: Path) -> None:
    seconds = round(START.timestamp()) + MP4_EPOCH_OFFSET_S
    mvhd = _box(b"mvhd", b"\x01\x00\x00\x00" + struct.pack(">QQ", seconds, seconds) + bytes(80))
    large_free = struct.pack(">I4sQ", 1, b"free", 16)  # a box with a 64-bit size
    path = tmp_path / "v1.mp4"
    path.write_bytes(_box(b"ftyp", b"isom" + bytes(4)) + large_free + _box(b"moov", mvhd))
    assert container_creation_ms(path) == START_MS


BAD_CONTAINERS = [
    ("empty file", b""),
    ("not a container", b"GIF89a" + bytes(100)),
    ("box larger than the file", struct.pack(">I4s", 1_000_000, b"moov") + bytes(20)),
    ("box smaller than its header", struct.pack(">I4s", 3, b"moov") + bytes(20)),
    ("movie without header", _box(b"moov", _box(b"trak", bytes(8)))),
    ("truncated header", _box(b"moov", struct.pack(">I4s", 12, b"mvhd") + b"\x00\x00")),
    ("unknown header version", _box(b"moov", _box(b"mvhd", b"\x07" + bytes(40)))),
    ("creation time zero", _box(b"moov", _box(b"mvhd", bytes(100)))),
]


@pytest.mark.parametrize(("case", "data"), BAD_CONTAINERS, ids=[c for c, _ in BAD_CONTAINERS])
def test_a_file_without_a_readable_creation_time_gives_none(tmp_path: Path, case: str, data: bytes) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(data)
    assert container_creation_ms(path) is None, case


def test_a_missing_file_gives_no_creation_time(tmp_path: Path) -> None:
    assert container_creation_ms(tmp_path / "gone.mp4") is None


def _footage_reader(spec: CameraSpec) -> tuple[CameraReader, list[FrameMessage]]:
    published: list[FrameMessage] = []

    def publish(message: FrameMessage) -> bytes:
        published.append(message)
        return f"{len(published)}-0".encode()

    return CameraReader(spec, IngestConfig(realtime=True), publish), published


def test_footage_frames_carry_start_plus_position_and_the_same_identity_on_every_run(tmp_path: Path) -> None:
    video = write_counter_video(tmp_path / "v.mp4", frames=20, fps=10.0)
    spec = CameraSpec("s1", "cam", str(video), fps=5.0, start_ms=START_MS)
    stamps = [round(stamp) for stamp, _ in sample_file(video, 5.0)]
    runs = []
    for _ in range(2):
        reader, published = _footage_reader(spec)
        reader.run(threading.Event())
        assert reader.status.state == "finished" and reader.status.progress == 1.0
        assert reader.status.footage_start_ms == START_MS
        runs.append([(m.key, m.captured_ms) for m in published])
    assert runs[0] == runs[1]
    assert [k.stream_epoch for k, _ in runs[0]] == [START_MS] * len(stamps)
    assert [k.seq for k, _ in runs[0]] == list(range(len(stamps)))
    assert [ms for _, ms in runs[0]] == [START_MS + s for s in stamps]


def test_the_container_creation_time_is_the_start_when_stores_yaml_gives_none(
    shared_data: Path, tmp_path: Path
) -> None:
    video = _with_creation_time(
        shared_data / "video" / "facenet-pytorch-video.mp4", tmp_path / "v.mp4", START
    )
    reader, published = _footage_reader(CameraSpec("s1", "cam", str(video), fps=2.0))
    reader.run(threading.Event())
    assert published[0].captured_ms == START_MS and published[0].key.stream_epoch == START_MS
    looping = CameraReader(CameraSpec("s1", "cam", str(video), fps=2.0, loop=True), IngestConfig(), print)
    assert looping.footage_start() is None  # a looped file would repeat its times: live clock instead


REGISTRY = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - id: cam
        source: {source}
        fps: 2
        {extra}
"""


def test_start_in_stores_yaml_reaches_the_camera_spec(tmp_path: Path) -> None:
    from moodstream.runtime.processes import registry_cameras

    path = tmp_path / "stores.yaml"
    path.write_text(REGISTRY.format(source="v.mp4", extra="start: 2026-03-01T16:59:58+07:00"))
    (spec,) = registry_cameras(load_registry(path))
    assert spec.start_ms == START_MS


BAD_STARTS = [
    ("no time zone", "v.mp4", "start: 2026-03-01T09:00:00", "has no time zone"),
    ("not a time", "v.mp4", "start: soon", "datetime"),
    ("before 1971", "v.mp4", "start: 1950-01-01T00:00:00Z", "between the years 1971 and 2999"),
    ("live camera", "rtsp://192.0.2.1/s", "start: 2026-03-01T09:00:00Z", "recorded video files only"),
    (
        "looping file",
        "v.mp4",
        "loop: true\n        start: 2026-03-01T09:00:00Z",
        "cannot be combined with loop",
    ),
]


@pytest.mark.parametrize(("case", "source", "extra", "message"), BAD_STARTS, ids=[c for c, *_ in BAD_STARTS])
def test_a_bad_start_is_refused_with_its_line(
    tmp_path: Path, case: str, source: str, extra: str, message: str
) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(REGISTRY.format(source=source, extra=extra))
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    (problem,) = info.value.problems
    assert message in problem.message, case
    assert problem.line is not None and 7 <= problem.line <= 11
    assert problem.key.startswith("stores[0].cameras[0]")
