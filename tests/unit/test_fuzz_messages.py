"""Fuzzing every stream message decoder and the frame JPEG decoder with hypothesis.

The promise: whatever a Redis stream entry holds, decoding it raises only ``MessageError`` (the
project's own error type, which the workers turn into a dead letter) or returns a valid message;
``frame_key_if_readable`` never raises; ``decode_jpeg`` returns an image or None for random, truncated,
corrupted and oversized (decompression-bomb) JPEG payloads, never an exception or a huge allocation; the
image header reader (``moodstream.schemas.image_header``) reads any declared JPEG, PNG, BMP, WebP or TIFF size
exactly and refuses one over the cap, and mutated headers give a size or an ``ImageSizeError``, nothing else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moodstream.schemas.image_header import ImageSizeError, check_declared_size, declared_size
from moodstream.schemas.jpeg import MAX_FRAME_PIXELS, decode_jpeg, jpeg_dimensions
from moodstream.schemas.messages import (
    MESSAGE_TYPES,
    ClassifiedVote,
    DeadLetter,
    EmotionsMessage,
    FacesMessage,
    FrameKey,
    FrameMessage,
    MessageError,
    TrackedFace,
    TracksMessage,
    VisitEmotion,
    VisitRecord,
    decode_message,
    frame_key_if_readable,
)
from tests.unit.test_image_size import (
    bmp_declaring,
    encoded,
    jpeg_declaring,
    png_declaring,
    tiff_declaring,
    webp_declaring,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY = FrameKey("store-1", "cam-1", 1700000000000, 42)
FACE = {"box": [1.0, 2.0, 30.0, 40.0], "score": 0.99, "lm": [[5.0, 6.0]] * 5}


def valid_entries() -> dict[str, dict[bytes, bytes]]:
    """One valid wire entry of each message type (the seeds the mutations start from)."""
    crops = np.zeros((1, 4, 4), np.uint8)
    faces = FacesMessage.decode(
        {
            **FrameMessage(KEY, 1, b"x").encode(),
            b"type": b"faces",
            b"frame_w": b"64",
            b"frame_h": b"48",
            b"faces": json.dumps([FACE]).encode(),
            b"crop_shape": b"[1, 4, 4]",
            b"crops": crops.tobytes(),
        }
    )
    return {
        "frame": FrameMessage(KEY, 1_700_000_000_000, b"\xff\xd8\xff\xe0jpeg").encode(),
        "faces": faces.encode(),
        "tracks": TracksMessage(
            KEY,
            5,
            (64, 48),
            (TrackedFace((1.0, 2.0, 30.0, 40.0), 0.9, True, 0.5),),
            False,
            (VisitRecord(1, 5, 3, 2, (2,)),),
            np.zeros((1, 4, 4), np.uint8),
        ).encode(),
        "emotions": EmotionsMessage(
            KEY,
            5,
            faces=1,
            readable_faces=1,
            votes=(ClassifiedVote(2, (1 / 7,) * 7),),
            visits=(VisitEmotion(1, 5, 3, 2, (1 / 7,) * 7),),
        ).encode(),
        "dead": DeadLetter("s:frames", "1-0", "detector", "why", 3, 5, key=KEY, captured_ms=1).encode(),
    }


VALID = valid_entries()
FIELD_NAMES = sorted({k for entry in VALID.values() for k in entry} | {b"", b"\xff", b"extra"})

NASTY_VALUES = st.sampled_from(
    [
        b"",
        b"-1",
        b"9" * 30,
        b"1e999",
        b"NaN",
        b"null",
        b"[]",
        b"{}",
        b"[" * 50_000,
        b"[1, 2, 3, 4]",
        b"[-1, 4, 4]",
        b"[0, 0, 0]",
        b"[1, 4, 4, 4]",
        b"[1e308, 1e308, 1e308]",
        b"[99999999999, 99999999999, 99999999999]",
        b'[{"box": [1, 2, 3, 4], "score": 1, "lm": [[1, 2]]}]',
        b'[{"box": [4, 3, 2, 1], "score": 1, "p": [0, 0, 0, 0, 0, 0, 2]}]',
        b'[{"box": [1, 2, 3, "x"], "score": Infinity, "p": []}]',
        b"\xff\xfe\x00",
        "ñ".encode(),
        b"1" * 5000,
    ]
)
VALUES = st.one_of(st.binary(max_size=64), NASTY_VALUES)


def mutated(entry: Mapping[bytes, bytes], data: st.DataObject) -> dict[bytes, bytes]:
    """A valid entry with some fields replaced, dropped or added."""
    out = dict(entry)
    for name in data.draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4)):
        action = data.draw(st.sampled_from(["replace", "drop"]))
        if action == "drop":
            out.pop(name, None)
        else:
            out[name] = data.draw(VALUES)
    return out


def decodes_or_message_error(decode: Callable[[Any], object], fields: Any) -> None:
    with contextlib.suppress(MessageError):
        decode(fields)


@FUZZ
@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
def test_mutated_entries_raise_only_message_error(kind: str, data: st.DataObject) -> None:
    fields = mutated(VALID[kind], data)
    decodes_or_message_error(decode_message, fields)
    for cls in MESSAGE_TYPES.values():
        decodes_or_message_error(cls.decode, fields)
    result = frame_key_if_readable(fields)
    assert result is None or isinstance(result[0], FrameKey)


@FUZZ
@given(
    fields=st.dictionaries(
        st.one_of(st.binary(max_size=12), st.text(max_size=12), st.sampled_from(FIELD_NAMES)),
        st.one_of(st.binary(max_size=40), st.text(max_size=40), NASTY_VALUES),
        max_size=12,
    )
)
def test_random_field_maps_raise_only_message_error(fields: dict[Any, Any]) -> None:
    decodes_or_message_error(decode_message, fields)
    frame_key_if_readable(fields)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_entries_round_trip(kind: str) -> None:
    message = decode_message(VALID[kind])
    assert message.encode() == VALID[kind]


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("field", [b"faces", b"crop_shape"])
def test_deeply_nested_json_is_a_message_error(field: bytes, depth: int) -> None:
    fields = {**VALID["faces"], field: b"[" * depth + b"]" * depth}
    with pytest.raises(MessageError):
        decode_message(fields)


# ---------------------------------------------------------------------------- JPEG payloads


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(width * height)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


GOOD_JPEG = _jpeg()


def with_declared_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF header claiming another size (a decompression bomb when large)."""
    data = bytearray(jpeg)
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_jpeg_dimensions_reads_the_header() -> None:
    assert jpeg_dimensions(GOOD_JPEG) == (64, 48)
    assert jpeg_dimensions(with_declared_size(GOOD_JPEG, 9000, 7000)) == (9000, 7000)
    assert jpeg_dimensions(b"\x89PNG\r\n\x1a\n") is None


@pytest.mark.parametrize(
    ("width", "height"),
    [(65500, 65500), (16000, 16000), (MAX_FRAME_PIXELS // 1000 + 1, 1000), (0, 48), (64, 0)],
    ids=["over OpenCV's own limit", "768 MB bomb", "just over the cap", "zero width", "zero height"],
)
def test_oversized_or_degenerate_headers_are_refused_before_decoding(width: int, height: int) -> None:
    assert decode_jpeg(with_declared_size(GOOD_JPEG, width, height)) is None


def test_a_frame_at_the_cap_still_decodes() -> None:
    image = decode_jpeg(_jpeg(640, 360))
    assert image is not None and image.shape == (360, 640, 3)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(GOOD_JPEG)))
@example(cut=2)
def test_truncated_jpeg_gives_an_image_or_none(cut: int) -> None:
    image = decode_jpeg(GOOD_JPEG[:cut])
    assert image is None or (image.dtype == np.uint8 and image.ndim == 3)


@settings(max_examples=150, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(GOOD_JPEG) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_corrupted_jpeg_gives_an_image_or_none(flips: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD_JPEG)
    for index, value in flips:
        data[index] = value
    image = decode_jpeg(bytes(data))
    assert image is None or image.size <= MAX_FRAME_PIXELS * 3


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=2048), st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff" + b)))
def test_random_bytes_give_none_or_an_image(data: bytes) -> None:
    image = decode_jpeg(data)
    assert image is None or image.size <= MAX_FRAME_PIXELS * 3


def test_non_jpeg_images_are_not_decoded_as_frames() -> None:
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok and decode_jpeg(png.tobytes()) is None


# ---------------------------------------------------------------------------- declared image sizes

IMAGE_HEADERS = {suffix: encoded(suffix) for suffix in (".jpg", ".png", ".bmp", ".webp", ".tiff")}
DECLARING = {
    "jpeg": (jpeg_declaring, 65535),
    "png": (png_declaring, 2**31 - 1),
    "bmp": (bmp_declaring, 2**31 - 1),
    "webp": (webp_declaring, 2**24),
    "tiff": (tiff_declaring, 2**32 - 1),
}


@settings(max_examples=300, deadline=None)
@given(
    suffix=st.sampled_from(sorted(IMAGE_HEADERS)),
    flips=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 200),
)
def test_mutated_image_headers_give_a_size_or_image_size_error(
    suffix: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(IMAGE_HEADERS[suffix][: max(cut, 1) if cut < 200 else None])
    for index, value in flips:
        if index < len(data):
            data[index] = value
    try:
        width, height = check_declared_size(bytes(data))
    except ImageSizeError as exc:
        assert "\n" not in str(exc)
        return
    assert 0 < width * height <= MAX_FRAME_PIXELS


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(DECLARING)), data=st.data())
def test_any_declared_size_is_read_exactly_and_capped(kind: str, data: st.DataObject) -> None:
    build, largest = DECLARING[kind]
    width = data.draw(st.integers(1, largest), label="width")
    height = data.draw(st.integers(1, largest), label="height")
    header = build(width, height)
    assert declared_size(header) == (width, height)
    if width * height > MAX_FRAME_PIXELS:
        with pytest.raises(ImageSizeError, match=f"{width} x {height} pixels"):
            check_declared_size(header)
    else:
        assert check_declared_size(header) == (width, height)
