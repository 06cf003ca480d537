"""Image sizes read from file headers, so an image is never decoded before its size is known.

A few hundred bytes of JPEG or PNG can declare 100000 x 100000 pixels: decoding them would allocate
tens of gigabytes (or end in an OpenCV exception). ``declared_size(data)`` reads the width and height a
JPEG, PNG, BMP, WebP or TIFF header declares, without decoding; ``check_declared_size`` turns an unknown
format or a size over the cap into an ``ImageSizeError`` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from moodstream.schemas.jpeg import MAX_FRAME_PIXELS, jpeg_dimensions

FORMATS: Final[str] = "JPEG, PNG, BMP, WebP or TIFF"


class ImageSizeError(ValueError):
    """An image whose header declares no size, an empty one, or more pixels than allowed."""


def _png(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _bmp(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"BM") or len(data) < 26:
        return None
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _webp(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    """Width and height tags (256, 257) of a TIFF's first image directory."""
    orders: dict[bytes, Literal["little", "big"]] = {b"II*\x00": "little", b"MM\x00*": "big"}
    order = orders.get(data[:4])
    if order is None or len(data) < 8:
        return None

    def number(start: int, size: int) -> int:
        return int.from_bytes(data[start : start + size], order)

    directory = number(4, 4)
    found: dict[int, int] = {}
    for i in range(min(number(directory, 2), 512)):
        entry = directory + 2 + 12 * i
        if entry + 12 > len(data):
            break
        tag, kind = number(entry, 2), number(entry + 2, 2)
        if tag in (256, 257) and kind in (3, 4):
            found[tag] = number(entry + 8, 2 if kind == 3 else 4)
    return (found[256], found[257]) if 256 in found and 257 in found else None


_READERS: Final[tuple[Callable[[bytes], tuple[int, int] | None], ...]] = (
    jpeg_dimensions,
    _png,
    _bmp,
    _webp,
    _tiff,
)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) the header of JPEG, PNG, BMP, WebP or TIFF bytes declares; None for another format
    or a header cut short."""
    for reader in _READERS:
        size = reader(data)
        if size is not None:
            return size
    return None


def check_declared_size(data: bytes, max_pixels: int = MAX_FRAME_PIXELS) -> tuple[int, int]:
    """The declared (width, height) when it is known, non-empty and at most ``max_pixels``; else
    ImageSizeError saying which."""
    size = declared_size(data)
    if size is None:
        raise ImageSizeError(f"not a {FORMATS} image (or its header is cut short)")
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageSizeError(f"the image declares an empty size ({width} x {height} pixels)")
    if width * height > max_pixels:
        raise ImageSizeError(
            f"the image declares {width} x {height} pixels, more than the {max_pixels:,} allowed; "
            "not decoded (a decompression bomb, or downscale it first)"
        )
    return size
