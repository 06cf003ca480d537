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
    ClassifiedVote,
    DeadLetter,
    DetectedFace,
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
    votes = (
        ClassifiedVote(5, _probs(EMOTIONS.index("happy"))),
        ClassifiedVote(6, _probs(EMOTIONS.index("sad"))),
        ClassifiedVote(7, _probs(EMOTIONS.index("happy"))),
    )
    visits = (
        VisitEmotion(5, 7, 4, 3, _probs(EMOTIONS.index("happy"))),
        VisitEmotion(1, 6, 2, 0, None),
    )
    message = EmotionsMessage(KEY, 7, faces=3, readable_faces=2, votes=votes, visits=visits)
    decoded = decode_message(message.encode())
    assert isinstance(decoded, EmotionsMessage)
    assert decoded.vote_emotion_counts() == {**dict.fromkeys(EMOTIONS, 0), "happy": 2, "sad": 1}
    assert [v.emotion for v in decoded.visits] == ["happy", None]
    assert [v.dwell_ms for v in decoded.visits] == [2, 5]
    assert (decoded.faces, decoded.readable_faces) == (3, 2)


def test_emotions_with_zero_faces_is_one_entry() -> None:
    decoded = decode_message(EmotionsMessage(KEY, 7, 0, 0).encode())
    assert isinstance(decoded, EmotionsMessage)
    assert (decoded.faces, decoded.votes, decoded.visits) == (0, (), ())


@pytest.mark.parametrize("late", [False, True])
def test_tracks_round_trip_keeps_vote_crops(late: bool) -> None:
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    faces = (TrackedFace((1, 2, 30, 40), 0.99, True, 0.8), TrackedFace((50, 2, 60, 12), 0.7, False, 0.1))
    visits = (VisitRecord(1, 5, 6, 4, (3, 5)), VisitRecord(2, 5, 2, 1, (2,)), VisitRecord(4, 5, 1, 0, ()))
    message = TracksMessage(KEY, 5, (640, 480), faces, late, visits, crops)
    decoded = decode_message(message.encode())
    assert isinstance(decoded, TracksMessage)
    assert (decoded.faces, decoded.visits, decoded.late) == (faces, visits, late)
    assert decoded.readable_faces == 1
    assert np.array_equal(decoded.crops, crops)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: VisitRecord(5, 4, 1, 1, ()), "visits.end"),
        (lambda: VisitRecord(1, 4, 2, 3, ()), "visits.readable"),
        (lambda: VisitRecord(1, 4, 2, 1, (2, 3)), "at most 1 votes"),
        (lambda: VisitRecord(1, 4, 2, 2, (9,)), "visits.votes"),
        (lambda: VisitRecord(1, 4, 0, 0, ()), "visits.faces"),
        (lambda: VisitEmotion(1, 2, 1, 1, (0.5,) * 6), "7 probabilities"),
        (lambda: TrackedFace((0, 0, 1, 1), 0.9, True, 1.5), "faces.quality"),
        (lambda: EmotionsMessage(KEY, 1, 2, 3), "readable"),
        (
            lambda: TracksMessage(
                KEY, 1, (9, 9), (), False, (VisitRecord(1, 2, 1, 1, (1,)),), np.zeros((0, 4, 4), np.uint8)
            ),
            "1 crops",
        ),
    ],
)
def test_visit_records_reject_inconsistent_values(make: Any, expected: str) -> None:
    with pytest.raises(MessageError, match=expected.replace("[", r"\[")):
        make()


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
        ({"v": b"1"}, "field 'v': expected wire version 2"),
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
    ("field", "value", "expected"),
    [
        (b"votes", [{"ts": 1, "p": [0.5] * 6}], "7 probabilities"),
        (b"votes", [{"ts": 1, "p": [2.0] * 7}], "probabilities in [0, 1]"),
        (b"votes", [{"ts": "x", "p": [0.1] * 7}], "an integer"),
        (b"visits", [{"start": 1, "end": 2, "faces": 1, "readable": 1}], "objects with keys"),
        (b"visits", [{"start": 1, "end": 2, "faces": 1, "readable": 1, "p": "happy"}], "7 probabilities"),
        (b"faces", "x", "an integer"),
    ],
)
def test_malformed_emotions_entries(field: bytes, value: Any, expected: str) -> None:
    fields = EmotionsMessage(KEY, 1, 0, 0).encode()
    fields[field] = (value if isinstance(value, str) else json.dumps(value)).encode()
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
            [
                b"v",
                b"type",
                b"store",
                b"camera",
                b"epoch",
                b"seq",
                b"ts",
                b"jpeg",
                b"faces",
                b"crops",
                b"visits",
            ]
        ),
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"2", b"frame", b"faces", b"tracks", b"emotions", b"dead", b"[]"]),
        ),
    )
)
def test_fuzzed_entries_raise_only_message_error(fields: dict[bytes, bytes]) -> None:
    with contextlib.suppress(MessageError):  # any other exception type fails the test
        decode_message(fields)
