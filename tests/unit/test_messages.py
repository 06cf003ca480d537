"""Stream messages: round trips, and malformed entries rejected with MessageError naming the field."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import (
    ClassifiedFace,
    DeadLetter,
    DetectedFace,
    EmotionsMessage,
    FacesMessage,
    FrameKey,
    FrameMessage,
    MessageError,
    decode_message,
    frame_key_if_readable,
)

KEY = FrameKey("hn-trangtien", "entrance", 1_700_000_000_000, 42)
LANDMARKS = ((10.0, 12.0), (20.0, 12.0), (15.0, 16.0), (11.0, 20.0), (19.0, 20.0))


def _detected(n: int) -> tuple[DetectedFace, ...]:
    return tuple(DetectedFace((1.0 + i, 2.0, 30.5, 40.25), 0.99, LANDMARKS) for i in range(n))


def _probs(index: int) -> tuple[float, ...]:
    values = [0.01] * len(EMOTIONS)
    values[index] = 1.0 - 0.01 * (len(EMOTIONS) - 1)
    return tuple(values)


def test_frame_round_trip() -> None:
    message = FrameMessage(KEY, 1_700_000_000_123, b"\xff\xd8jpegbytes")
    decoded = decode_message(message.encode())
    assert decoded == message


@pytest.mark.parametrize("crop_shape", [(2, 48, 48), (2, 64, 64, 3), (0, 48, 48)])
def test_faces_round_trip_keeps_crops_bit_exact(crop_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=crop_shape, dtype=np.uint8)
    message = FacesMessage(KEY, 5, (480, 270), _detected(crop_shape[0]), crops)
    decoded = decode_message(message.encode())
    assert isinstance(decoded, FacesMessage)
    assert decoded.key == KEY and decoded.frame_size == (480, 270)
    assert decoded.faces == message.faces
    assert decoded.crops.shape == crop_shape
    assert np.array_equal(decoded.crops, crops)


def test_emotions_round_trip_and_counts() -> None:
    faces = (
        ClassifiedFace((0, 0, 10, 10), 0.9, _probs(EMOTIONS.index("happy"))),
        ClassifiedFace((0, 0, 10, 10), 0.9, _probs(EMOTIONS.index("sad"))),
        ClassifiedFace((0, 0, 10, 10), 0.9, _probs(EMOTIONS.index("happy"))),
    )
    message = EmotionsMessage(KEY, 7, faces)
    decoded = decode_message(message.encode())
    assert isinstance(decoded, EmotionsMessage)
    assert decoded.emotion_counts() == {**dict.fromkeys(EMOTIONS, 0), "happy": 2, "sad": 1}


def test_emotions_with_zero_faces_is_one_entry() -> None:
    decoded = decode_message(EmotionsMessage(KEY, 7, ()).encode())
    assert isinstance(decoded, EmotionsMessage) and decoded.faces == ()


@pytest.mark.parametrize("with_key", [True, False])
def test_dead_letter_round_trip(with_key: bool) -> None:
    letter = DeadLetter(
        source_stream="moodstream:frames",
        entry_id="1-0",
        stage="detector",
        reason="undecodable JPEG",
        deliveries=1,
        failed_ms=99,
        loss="dead",
        key=KEY if with_key else None,
        captured_ms=5 if with_key else None,
    )
    assert decode_message(letter.encode()) == letter


def _frame_fields(**changes: Any) -> dict[bytes, bytes]:
    fields = FrameMessage(KEY, 123, b"jpeg").encode()
    for name, value in changes.items():
        if value is None:
            fields.pop(name.encode())
        else:
            fields[name.encode()] = value
    return fields


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seq": b"-1"}, "field 'seq': expected an integer in [0,"),
        ({"seq": b"abc"}, "field 'seq': expected an integer"),
        ({"seq": None}, "field 'seq': expected it to be present"),
        ({"store": b"Bad Store!"}, "field 'store': expected a slug id"),
        ({"camera": b"\xff\xfe"}, "field 'camera': expected ASCII text"),
        ({"ts": b"12.5"}, "field 'ts': expected an integer"),
        ({"jpeg": b""}, "field 'jpeg': expected 1 to"),
        ({"type": b"faces"}, "field 'type': expected 'frame'"),
        ({"v": b"2"}, "field 'v': expected wire version 1"),
    ],
)
def test_malformed_frame_entries(changes: dict[str, bytes | None], expected: str) -> None:
    with pytest.raises(MessageError) as info:
        FrameMessage.decode(_frame_fields(**changes))
    assert expected in str(info.value)


def test_unknown_entry_type_names_the_known_ones() -> None:
    with pytest.raises(MessageError, match=r"field 'type': expected one of \['dead', 'emotions'"):
        decode_message(_frame_fields(type=b"bogus"))


def _faces_fields(**changes: Any) -> dict[bytes, bytes]:
    fields = FacesMessage(KEY, 1, (480, 270), _detected(1), np.zeros((1, 48, 48), np.uint8)).encode()
    fields.update({k.encode(): v for k, v in changes.items()})
    return fields


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"crops": b"\x00" * 10}, "field 'crops': expected 2304 bytes"),
        ({"crop_shape": b"[1, 48]"}, "field 'crop_shape': expected [N, H, W]"),
        ({"crop_shape": b"[2, 48, 24]"}, "field 'crop_shape': expected 1 crops"),
        ({"faces": b"not json"}, "field 'faces': expected JSON"),
        ({"faces": b"{}"}, "field 'faces': expected a JSON list"),
        ({"faces": b'[{"box": [1, 2, 3]}]'}, "field 'faces': expected objects with keys"),
        ({"faces": json.dumps([{"box": [5, 5, 1, 1], "score": 1, "lm": [[0, 0]] * 5}]).encode()}, "x2 >= x1"),
        ({"faces": json.dumps([{"box": [0, 0, 1, 1], "score": 1, "lm": [[0, 0]] * 4}]).encode()}, "5 points"),
        ({"frame_w": b"0"}, "field 'frame_w': expected an integer in [1, 65535]"),
    ],
)
def test_malformed_faces_entries(changes: dict[str, bytes], expected: str) -> None:
    with pytest.raises(MessageError) as info:
        decode_message(_faces_fields(**changes))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("faces", "expected"),
    [
        ([{"box": [0, 0, 1, 1], "score": 1, "p": [0.5] * 6}], "7 probabilities"),
        ([{"box": [0, 0, 1, 1], "score": 1, "p": [2.0] * 7}], "probabilities in [0, 1]"),
        ([{"box": [0, 0, 1, 1], "score": "x", "p": [0.1] * 7}], "a finite number"),
    ],
)
def test_malformed_emotions_entries(faces: list[Any], expected: str) -> None:
    fields = EmotionsMessage(KEY, 1, ()).encode()
    fields[b"faces"] = json.dumps(faces).encode()
    with pytest.raises(MessageError) as info:
        decode_message(fields)
    assert expected in str(info.value)


def test_constructor_rejects_crop_count_mismatch() -> None:
    with pytest.raises(MessageError, match="one per face"):
        FacesMessage(KEY, 1, (10, 10), _detected(2), np.zeros((1, 48, 48), np.uint8))


def test_frame_key_is_read_from_a_broken_entry_for_dead_letters() -> None:
    fields = _frame_fields(jpeg=None)
    assert frame_key_if_readable(fields) == (KEY, 123)
    assert frame_key_if_readable({b"store": b"x"}) is None


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [b"v", b"type", b"store", b"camera", b"epoch", b"seq", b"ts", b"jpeg", b"faces", b"crops"]
        ),
        st.one_of(
            st.binary(max_size=40), st.sampled_from([b"1", b"frame", b"faces", b"emotions", b"dead", b"[]"])
        ),
    )
)
def test_fuzzed_entries_raise_only_message_error(fields: dict[bytes, bytes]) -> None:
    with contextlib.suppress(MessageError):  # any other exception type fails the test
        decode_message(fields)
