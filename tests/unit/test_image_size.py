"""Image sizes checked before decoding: ``analyze`` on tiny files declaring huge images, camera frames
downscaled at ingest, OpenCV errors as one line."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from moodstream.cli.app import build_app
from moodstream.ingest import CameraReader, CameraSpec, IngestConfig, SourceError, opencv_message, read_image
from moodstream.schemas.image_header import declared_size
from moodstream.schemas.jpeg import decode_jpeg
from moodstream.schemas.messages import FrameMessage
from tests.unit.test_ingest import FAST


def encoded(suffix: str, width: int = 37, height: int = 23) -> bytes:
    ok, buffer = cv2.imencode(suffix, np.full((height, width, 3), 90, np.uint8))
    assert ok
    return buffer.tobytes()


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encoded(".jpg", 8, 8))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A 68-byte PNG whose header declares ``width`` x ``height`` RGB pixels (its data is one empty row)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(encoded(".bmp", 4, 4))
    data[18:26] = struct.pack("<ii", width, -height)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(body))
        + b"WEBP"
        + b"VP8X"
        + struct.pack("<I", len(body))
        + body
    )


def tiff_declaring(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8)]
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tiff"])
def test_declared_size_reads_what_opencv_wrote(suffix: str) -> None:
    assert declared_size(encoded(suffix)) == (37, 23)


BOMBS = {
    # name: (file name, bytes, words of the one-line error)
    "631-byte JPEG declaring 12000 x 12000": (
        "bomb.jpg",
        jpeg_declaring(12000, 12000),
        "12000 x 12000 pixels",
    ),
    "65-byte PNG declaring 100000 x 100000": ("bomb.png", png_declaring(100_000, 100_000), "100000 x 100000"),
    "BMP declaring 50000 x 50000": ("bomb.bmp", bmp_declaring(50_000, 50_000), "50000 x 50000"),
    "WebP declaring 20000 x 20000": ("bomb.webp", webp_declaring(20_000, 20_000), "20000 x 20000"),
    "TIFF declaring 30000 x 30000": ("bomb.tiff", tiff_declaring(30_000, 30_000), "30000 x 30000"),
    "PNG declaring an empty image": ("empty.png", png_declaring(0, 10), "empty size"),
    "text named .jpg": ("notes.jpg", b"just some words\n", "not a JPEG, PNG, BMP, WebP or TIFF"),
    "PNG with a broken body": ("broken.png", png_declaring(64, 64), "broken.png"),
}


@pytest.mark.parametrize(("name", "data", "words"), BOMBS.values(), ids=BOMBS.keys())
def test_images_are_refused_before_decoding_with_one_line(
    tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceError) as info:
        read_image(path)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "case", ["65-byte PNG declaring 100000 x 100000", "631-byte JPEG declaring 12000 x 12000"]
)
def test_analyze_refuses_an_image_bomb_in_one_line(tmp_path: Path, case: str) -> None:
    name, data, words = BOMBS[case]
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(build_app(), ["analyze", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], result.stderr


def test_opencv_errors_become_one_line() -> None:
    with pytest.raises(cv2.error) as info:
        cv2.resize(np.zeros((0, 0, 3), np.uint8), (4, 4))
    message = opencv_message(info.value)
    assert "\n" not in message and ".cpp" not in message and "OpenCV" in message


def test_ingest_downscales_frames_over_the_maximum(tmp_path: Path) -> None:
    video = tmp_path / "wide.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (640, 480))
    for i in range(3):
        writer.write(np.full((480, 640, 3), 40 * i, np.uint8))
    writer.release()
    published: list[FrameMessage] = []
    config = FAST.model_copy(update={"max_frame_pixels": 320 * 240})
    reader = CameraReader(CameraSpec("s1", "cam", str(video), fps=10.0), config, published.append)
    reader.run(threading.Event())
    images = [decode_jpeg(m.jpeg) for m in published]
    assert len(images) == 3 and all(i is not None and i.shape == (240, 320, 3) for i in images)
    assert IngestConfig().max_frame_pixels == 3840 * 2160
