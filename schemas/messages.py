"""Stream message types: one class per kind of Redis stream entry, with encode/decode and validation.

Every entry carries the identity of the frame it is about (``FrameKey``: store_id, camera_id,
stream_epoch, seq) and the frame's capture time as UTC epoch milliseconds, so each stage writes
exactly one entry downstream per input frame and the aggregator can recognise a redelivered frame.

Wire format: a flat Redis stream field map ``{bytes: bytes}``. Scalars are ASCII text; structured
face data is compact JSON; aligned face crops travel as raw uint8 bytes plus their shape (they live
only transiently in capped streams and are never persisted). ``decode_message`` turns a field map
back into the typed message and raises ``MessageError`` naming the field, what was expected and
what was found.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np

from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.regions import ZONE_ID_PATTERN

WIRE_VERSION: Final[int] = 2
"""Version of the field layout; bumped when a field changes meaning (2: visits, the ``tracks`` stream)."""

MAX_JPEG_BYTES: Final[int] = 16 * 1024 * 1024
"""Largest JPEG payload accepted (a 4K frame at high quality is well below this)."""

MAX_FACES: Final[int] = 512
"""Most faces one frame may carry."""

MAX_VISITS: Final[int] = 512
"""Most visits that may end at one frame."""

MAX_VOTES: Final[int] = 64
_ZONE_KEY: Final[frozenset[str]] = frozenset({"zone"})
"""Most classified faces (votes) one visit may carry."""

MAX_REASON_CHARS: Final[int] = 2000
"""Longest dead-letter reason kept (longer ones are cut)."""

_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_INT64_MAX: Final[int] = 2**63 - 1

Fields = dict[bytes, bytes]
"""A Redis stream entry as written: field name -> value, both bytes."""


class MessageError(ValueError):
    """A stream entry is malformed: names the field, what was expected and what was found."""


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(name: str, expected: str, actual: object) -> MessageError:
    return MessageError(f"field {name!r}: expected {expected}, got {_shorten(actual)}")


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise _fail(name, "a slug id (lowercase letters, digits, '-' or '_', at most 63 characters)", value)
    return value


def _check_int(name: str, value: object, low: int = 0, high: int = _INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(name, f"an integer in [{low}, {high}]", value)
    return value


def _check_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, "a finite number", value)
    return float(value)


@dataclass(frozen=True, slots=True)
class FrameKey:
    """Identity of one sampled frame; a new ``stream_epoch`` starts with each ingest run of a camera."""

    store_id: str
    camera_id: str
    stream_epoch: int
    seq: int

    def __post_init__(self) -> None:
        _check_id("store", self.store_id)
        _check_id("camera", self.camera_id)
        _check_int("epoch", self.stream_epoch)
        _check_int("seq", self.seq)

    def to_fields(self) -> Fields:
        """The four identity fields in wire form."""
        return {
            b"store": self.store_id.encode(),
            b"camera": self.camera_id.encode(),
            b"epoch": str(self.stream_epoch).encode(),
            b"seq": str(self.seq).encode(),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> FrameKey:
        """Read the identity fields; raises MessageError when one is missing or malformed."""
        return cls(
            store_id=_text(fields, "store"),
            camera_id=_text(fields, "camera"),
            stream_epoch=_int_field(fields, "epoch"),
            seq=_int_field(fields, "seq"),
        )

    def label(self) -> str:
        """Short human form, e.g. ``store/camera#epoch:seq``."""
        return f"{self.store_id}/{self.camera_id}#{self.stream_epoch}:{self.seq}"


# ---------------------------------------------------------------------------- field readers


def normalise_fields(raw: Mapping[Any, Any]) -> Fields:
    """Turn a field map with str or bytes keys/values into bytes -> bytes (what redis-py returns)."""
    out: Fields = {}
    for key, value in raw.items():
        k = key.encode() if isinstance(key, str) else key
        v = value.encode() if isinstance(value, str) else value
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            raise MessageError(f"field {_shorten(key)}: expected bytes or str, got {type(value).__name__}")
        out[k] = v
    return out


def _raw(fields: Mapping[bytes, bytes], name: str) -> bytes:
    value = fields.get(name.encode())
    if value is None:
        raise MessageError(f"field {name!r}: expected it to be present, got nothing (missing field)")
    return value


def _text(fields: Mapping[bytes, bytes], name: str) -> str:
    raw = _raw(fields, name)
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise _fail(name, "ASCII text", raw) from None


def _int_field(fields: Mapping[bytes, bytes], name: str, low: int = 0, high: int = _INT64_MAX) -> int:
    text = _text(fields, name)
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise _fail(name, f"an integer in [{low}, {high}]", text)
    return _check_int(name, int(text), low, high)


def _json_field(fields: Mapping[bytes, bytes], name: str) -> Any:
    raw = _raw(fields, name)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        raise _fail(name, "JSON", raw) from None


def _header(kind: str) -> Fields:
    return {b"v": str(WIRE_VERSION).encode(), b"type": kind.encode()}


# ---------------------------------------------------------------------------- face records


def _check_box(name: str, value: object) -> tuple[float, float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise _fail(name, "a box [x1, y1, x2, y2]", value)
    x1, y1, x2, y2 = (_check_finite(name, v) for v in value)
    if x2 < x1 or y2 < y1:
        raise _fail(name, "x2 >= x1 and y2 >= y1", value)
    return (x1, y1, x2, y2)


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """One face found by the detector: box (x1, y1, x2, y2) in frame pixels, score, 5 landmarks (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_box("faces.box", list(self.box))
        _check_finite("faces.score", self.score)
        if len(self.landmarks) != 5 or any(len(p) != 2 for p in self.landmarks):
            raise _fail("faces.landmarks", "5 points [x, y]", self.landmarks)
        for point in self.landmarks:
            for v in point:
                _check_finite("faces.landmarks", v)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form (coordinates rounded to 0.01 px)."""
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "lm": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
        }

    @classmethod
    def from_json(cls, item: object) -> DetectedFace:
        """Parse one ``faces`` item; raises MessageError when malformed."""
        if not isinstance(item, dict) or set(item) != {"box", "score", "lm"}:
            raise _fail("faces", "objects with keys box, score, lm", item)
        lm = item["lm"]
        points_ok = isinstance(lm, list) and all(isinstance(p, list) and len(p) == 2 for p in lm)
        if not points_ok or len(lm) != 5:
            raise _fail("faces.lm", "5 points [x, y]", lm)
        points = tuple((_check_finite("faces.lm", p[0]), _check_finite("faces.lm", p[1])) for p in lm)
        return cls(_check_box("faces.box", item["box"]), _check_finite("faces.score", item["score"]), points)


@dataclass(frozen=True, slots=True)
class ClassifiedFace:
    """One face with its emotion probabilities, shape (7,) in ``EMOTIONS`` order."""

    box: tuple[float, float, float, float]
    score: float
    probs: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_box("faces.box", list(self.box))
        _check_finite("faces.score", self.score)
        if len(self.probs) != len(EMOTIONS):
            raise _fail("faces.probs", f"{len(EMOTIONS)} probabilities", self.probs)
        for p in self.probs:
            if not 0.0 <= _check_finite("faces.probs", p) <= 1.0 + 1e-3:
                raise _fail("faces.probs", "probabilities in [0, 1]", self.probs)

    @property
    def emotion(self) -> str:
        """The most probable emotion (first one on ties, in EMOTIONS order)."""
        return EMOTIONS[int(np.argmax(np.asarray(self.probs)))]

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form (probabilities keep float32 precision)."""
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "p": [float(np.float32(p)) for p in self.probs],
        }

    @classmethod
    def from_json(cls, item: object) -> ClassifiedFace:
        """Parse one ``faces`` item; raises MessageError when malformed."""
        if not isinstance(item, dict) or set(item) != {"box", "score", "p"}:
            raise _fail("faces", "objects with keys box, score, p", item)
        probs = item["p"]
        if not isinstance(probs, list):
            raise _fail("faces.p", f"a list of {len(EMOTIONS)} probabilities", probs)
        return cls(
            _check_box("faces.box", item["box"]),
            _check_finite("faces.score", item["score"]),
            tuple(_check_finite("faces.p", p) for p in probs),
        )


def _faces_list(fields: Mapping[bytes, bytes]) -> list[Any]:
    items = _json_field(fields, "faces")
    if not isinstance(items, list) or len(items) > MAX_FACES:
        raise _fail("faces", f"a JSON list of at most {MAX_FACES} faces", items)
    return items


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class FrameMessage:
    """``frames`` stream: one sampled camera frame as JPEG bytes, with its identity and capture time.

    ``regions``: where ingest's motion gate says a face can be, boxes (x1, y1, x2, y2) in frame pixels
    (x2, y2 exclusive); None (no ``regions`` field on the wire): search the whole frame; empty: nothing to
    look at (the frame is still counted).
    """

    KIND: ClassVar[str] = "frame"
    key: FrameKey
    captured_ms: int
    jpeg: bytes = field(repr=False)
    regions: tuple[tuple[int, int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        _check_int("ts", self.captured_ms)
        if not isinstance(self.jpeg, bytes) or not 0 < len(self.jpeg) <= MAX_JPEG_BYTES:
            raise _fail("jpeg", f"1 to {MAX_JPEG_BYTES} bytes", type(self.jpeg).__name__)
        if self.regions is not None:
            _check_regions(self.regions)

    def encode(self) -> Fields:
        """Field map for XADD."""
        fields: Fields = {
            **_header(self.KIND),
            **self.key.to_fields(),
            b"ts": str(self.captured_ms).encode(),
            b"jpeg": self.jpeg,
        }
        if self.regions is not None:
            fields[b"regions"] = _boxes_json(self.regions)
        return fields

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> FrameMessage:
        """Parse a ``frames`` entry; raises MessageError."""
        _expect_kind(fields, cls.KIND)
        regions = _optional_boxes(fields, "regions")
        return cls(FrameKey.from_fields(fields), _int_field(fields, "ts"), _raw(fields, "jpeg"), regions)


@dataclass(frozen=True, slots=True)
class FacesMessage:
    """``faces`` stream: the faces of one frame, with aligned crops (possibly none).

    ``crops`` is uint8, shape (N, H, W) for gray or (N, H, W, 3) for colour crops, N == len(faces);
    on the wire it is raw bytes plus its shape. ``frame_size`` is the frame's (width, height).
    ``searched``: the regions the detector searched, boxes (x1, y1, x2, y2) in frame pixels as the faces'
    boxes (x2, y2 exclusive); None (no ``searched`` field on the wire): the whole frame; empty: nothing
    (a frame with nothing to look at). The tracker does not age a track the detector did not look for.
    """

    KIND: ClassVar[str] = "faces"
    key: FrameKey
    captured_ms: int
    frame_size: tuple[int, int]
    faces: tuple[DetectedFace, ...]
    crops: np.ndarray = field(repr=False)
    searched: tuple[tuple[int, int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        _check_int("ts", self.captured_ms)
        _check_int("frame_w", self.frame_size[0], 1, 65535)
        _check_int("frame_h", self.frame_size[1], 1, 65535)
        if len(self.faces) > MAX_FACES:
            raise _fail("faces", f"at most {MAX_FACES} faces", len(self.faces))
        _check_crops(self.crops, len(self.faces))
        if self.searched is not None:
            _check_regions(self.searched, "searched")

    def encode(self) -> Fields:
        """Field map for XADD."""
        crops = np.ascontiguousarray(self.crops, dtype=np.uint8)
        fields: Fields = {
            **_header(self.KIND),
            **self.key.to_fields(),
            b"ts": str(self.captured_ms).encode(),
            b"frame_w": str(self.frame_size[0]).encode(),
            b"frame_h": str(self.frame_size[1]).encode(),
            b"faces": json.dumps([f.to_json() for f in self.faces], separators=(",", ":")).encode(),
            b"crop_shape": json.dumps(list(crops.shape)).encode(),
            b"crops": crops.tobytes(),
        }
        if self.searched is not None:
            fields[b"searched"] = _boxes_json(self.searched)
        return fields

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> FacesMessage:
        """Parse a ``faces`` entry; raises MessageError."""
        _expect_kind(fields, cls.KIND)
        faces = tuple(DetectedFace.from_json(item) for item in _faces_list(fields))
        crops = _crops_field(fields)
        size = (_int_field(fields, "frame_w", 1, 65535), _int_field(fields, "frame_h", 1, 65535))
        searched = _optional_boxes(fields, "searched")
        return cls(FrameKey.from_fields(fields), _int_field(fields, "ts"), size, faces, crops, searched)


def _crops_field(fields: Mapping[bytes, bytes]) -> np.ndarray:
    """The ``crops`` bytes reshaped by ``crop_shape``: (N, H, W) or (N, H, W, 3) uint8."""
    shape = _json_field(fields, "crop_shape")
    shape_ok = isinstance(shape, list) and all(type(v) is int for v in shape)
    if not shape_ok or len(shape) not in (3, 4):
        raise _fail("crop_shape", "[N, H, W] or [N, H, W, 3]", shape)
    raw = _raw(fields, "crops")
    expected = math.prod(shape)
    if min(shape) < 0 or len(raw) != expected:
        raise _fail("crops", f"{expected} bytes for shape {shape}", f"{len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _check_crops(crops: object, n_faces: int) -> None:
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8:
        raise _fail("crops", "a uint8 numpy array", type(crops).__name__)
    if crops.ndim not in (3, 4) or (crops.ndim == 4 and crops.shape[3] != 3):
        raise _fail("crop_shape", "(N, H, W) or (N, H, W, 3)", crops.shape)
    if crops.shape[0] != n_faces:
        raise _fail("crop_shape", f"{n_faces} crops (one per face or vote)", crops.shape)


def _check_probs(name: str, probs: object) -> tuple[float, ...]:
    if not isinstance(probs, list | tuple) or len(probs) != len(EMOTIONS):
        raise _fail(name, f"{len(EMOTIONS)} probabilities", probs)
    values = tuple(_check_finite(name, p) for p in probs)
    if any(not 0.0 <= p <= 1.0 + 1e-3 for p in values):
        raise _fail(name, "probabilities in [0, 1]", probs)
    return values


def _emotion_of(probs: Sequence[float]) -> str:
    return EMOTIONS[int(np.argmax(np.asarray(probs)))]


def _json_list(fields: Mapping[bytes, bytes], name: str, limit: int) -> list[Any]:
    items = _json_field(fields, name)
    if not isinstance(items, list) or len(items) > limit:
        raise _fail(name, f"a JSON list of at most {limit} items", items)
    return items


def _check_keys(
    name: str, item: object, keys: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(item, dict) or not keys <= set(item) <= keys | optional:
        raise _fail(name, f"objects with keys {', '.join(sorted(keys))}", item)
    return item


MAX_REGIONS: Final[int] = 256


def _check_regions(items: Sequence[object], name: str = "regions") -> tuple[tuple[int, int, int, int], ...]:
    """Regions (field ``name``): at most MAX_REGIONS boxes of 4 ints with x1 < x2, y1 < y2, all in
    0..65535."""
    if len(items) > MAX_REGIONS:
        raise _fail(name, f"at most {MAX_REGIONS} boxes", len(items))
    out = []
    for item in items:
        if not isinstance(item, list | tuple) or len(item) != 4:
            raise _fail(name, "boxes [x1, y1, x2, y2]", item)
        x1, y1, x2, y2 = (_check_int(name, v, 0, 65535) for v in item)
        if x2 <= x1 or y2 <= y1:
            raise _fail(name, "boxes with x1 < x2 and y1 < y2", item)
        out.append((x1, y1, x2, y2))
    return tuple(out)


def _boxes_json(boxes: Sequence[tuple[int, int, int, int]]) -> bytes:
    return json.dumps([list(b) for b in boxes], separators=(",", ":")).encode()


def _optional_boxes(fields: Mapping[bytes, bytes], name: str) -> tuple[tuple[int, int, int, int], ...] | None:
    """An optional field of regions (``_check_regions``): None when absent."""
    if name.encode() not in fields:
        return None
    items = _json_field(fields, name)
    if not isinstance(items, list):
        raise _fail(name, "a JSON list of [x1, y1, x2, y2] boxes", items)
    return _check_regions(items, name)


def _check_zone(name: str, value: object) -> str | None:
    """A visit's zone: None or a zone id (stores.yaml ``zones[].id``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(ZONE_ID_PATTERN, value):
        raise _fail(name, "null or a zone id (1-64 lowercase letters, digits, '-' or '_')", value)
    return value


@dataclass(frozen=True, slots=True)
class TrackedFace:
    """One face of a frame after tracking: box (x1, y1, x2, y2), detector score, the quality gate's verdict.

    ``readable``: the face passed the quality gate (it may vote for its visit's emotion); ``quality``: in
    [0, 1].
    No track id: ids live only in the tracker's memory.
    """

    box: tuple[float, float, float, float]
    score: float
    readable: bool
    quality: float

    def __post_init__(self) -> None:
        _check_box("faces.box", list(self.box))
        _check_finite("faces.score", self.score)
        if not isinstance(self.readable, bool):
            raise _fail("faces.readable", "true or false", self.readable)
        if not 0.0 <= _check_finite("faces.quality", self.quality) <= 1.0:
            raise _fail("faces.quality", "a number in [0, 1]", self.quality)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form."""
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "ok": self.readable,
            "q": round(self.quality, 4),
        }

    @classmethod
    def from_json(cls, item: object) -> TrackedFace:
        """Parse one ``faces`` item; raises MessageError when malformed."""
        data = _check_keys("faces", item, {"box", "score", "ok", "q"})
        return cls(
            _check_box("faces.box", data["box"]),
            _check_finite("faces.score", data["score"]),
            data["ok"],
            _check_finite("faces.q", data["q"]),
        )


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """A visit that ended at this frame, as the tracker knows it (no emotion yet, no track id).

    ``started_ms``/``ended_ms``: capture times of its first and last observed face; ``faces``: faces observed;
    ``readable_faces``: those that passed the gate; ``vote_ms``: capture time of each vote crop sent along
    (at most MAX_VOTES, the best readable faces; empty = the visit is unreadable); ``zone``: the camera zone
    the visit belongs to (None: no zone; absent on the wire).
    """

    started_ms: int
    ended_ms: int
    faces: int
    readable_faces: int
    vote_ms: tuple[int, ...]
    zone: str | None = None

    def __post_init__(self) -> None:
        _check_zone("visits.zone", self.zone)
        _check_int("visits.start", self.started_ms)
        _check_int("visits.end", self.ended_ms, self.started_ms)
        _check_int("visits.faces", self.faces, 1)
        _check_int("visits.readable", self.readable_faces, 0, self.faces)
        if len(self.vote_ms) > min(MAX_VOTES, self.readable_faces):
            raise _fail("visits.votes", f"at most {min(MAX_VOTES, self.readable_faces)} votes", self.vote_ms)
        for ms in self.vote_ms:
            _check_int("visits.votes", ms, self.started_ms, self.ended_ms)

    @property
    def dwell_ms(self) -> int:
        """Time from the first to the last observation of the visit."""
        return self.ended_ms - self.started_ms

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form."""
        return {
            "start": self.started_ms,
            "end": self.ended_ms,
            "faces": self.faces,
            "readable": self.readable_faces,
            "votes": list(self.vote_ms),
            **({} if self.zone is None else {"zone": self.zone}),
        }

    @classmethod
    def from_json(cls, item: object) -> VisitRecord:
        """Parse one ``visits`` item; raises MessageError when malformed."""
        data = _check_keys("visits", item, {"start", "end", "faces", "readable", "votes"}, _ZONE_KEY)
        votes = data["votes"]
        if not isinstance(votes, list):
            raise _fail("visits.votes", "a list of capture times", votes)
        zone = data.get("zone")
        return cls(data["start"], data["end"], data["faces"], data["readable"], tuple(votes), zone)


@dataclass(frozen=True, slots=True)
class TracksMessage:
    """``tracks`` stream: one frame after tracking (tracker -> classifier).

    ``faces``: every face of the frame with the gate's verdict; ``late``: the frame arrived after the reorder
    window had passed its position (counted as a frame, its faces not tracked); ``visits``: visits that ended
    at this frame; ``crops``: uint8 (V, H, W) or (V, H, W, 3), the vote crops of those visits concatenated in
    visit order (V == sum of len(vote_ms)); on the wire raw bytes plus their shape.
    """

    KIND: ClassVar[str] = "tracks"
    key: FrameKey
    captured_ms: int
    frame_size: tuple[int, int]
    faces: tuple[TrackedFace, ...]
    late: bool
    visits: tuple[VisitRecord, ...]
    crops: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        _check_int("ts", self.captured_ms)
        _check_int("frame_w", self.frame_size[0], 1, 65535)
        _check_int("frame_h", self.frame_size[1], 1, 65535)
        if len(self.faces) > MAX_FACES:
            raise _fail("faces", f"at most {MAX_FACES} faces", len(self.faces))
        if len(self.visits) > MAX_VISITS:
            raise _fail("visits", f"at most {MAX_VISITS} visits", len(self.visits))
        _check_crops(self.crops, sum(len(v.vote_ms) for v in self.visits))

    def encode(self) -> Fields:
        """Field map for XADD."""
        crops = np.ascontiguousarray(self.crops, dtype=np.uint8)
        return {
            **_header(self.KIND),
            **self.key.to_fields(),
            b"ts": str(self.captured_ms).encode(),
            b"frame_w": str(self.frame_size[0]).encode(),
            b"frame_h": str(self.frame_size[1]).encode(),
            b"late": b"1" if self.late else b"0",
            b"faces": json.dumps([f.to_json() for f in self.faces], separators=(",", ":")).encode(),
            b"visits": json.dumps([v.to_json() for v in self.visits], separators=(",", ":")).encode(),
            b"crop_shape": json.dumps(list(crops.shape)).encode(),
            b"crops": crops.tobytes(),
        }

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> TracksMessage:
        """Parse a ``tracks`` entry; raises MessageError."""
        _expect_kind(fields, cls.KIND)
        faces = tuple(TrackedFace.from_json(item) for item in _json_list(fields, "faces", MAX_FACES))
        visits = tuple(VisitRecord.from_json(item) for item in _json_list(fields, "visits", MAX_VISITS))
        late = _text(fields, "late")
        if late not in ("0", "1"):
            raise _fail("late", "0 or 1", late)
        size = (_int_field(fields, "frame_w", 1, 65535), _int_field(fields, "frame_h", 1, 65535))
        crops = _crops_field(fields)
        return cls(
            FrameKey.from_fields(fields), _int_field(fields, "ts"), size, faces, late == "1", visits, crops
        )

    @property
    def readable_faces(self) -> int:
        """Faces of this frame that passed the quality gate."""
        return sum(1 for f in self.faces if f.readable)


@dataclass(frozen=True, slots=True)
class ClassifiedVote:
    """A classified face (a visit's vote): its capture time and emotion probabilities (7, EMOTIONS order)."""

    captured_ms: int
    probs: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_int("votes.ts", self.captured_ms)
        _check_probs("votes.p", self.probs)

    @property
    def emotion(self) -> str:
        """The most probable emotion (first one on ties, in EMOTIONS order)."""
        return _emotion_of(self.probs)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form (probabilities keep float32 precision)."""
        return {"ts": self.captured_ms, "p": [float(np.float32(p)) for p in self.probs]}

    @classmethod
    def from_json(cls, item: object) -> ClassifiedVote:
        """Parse one ``votes`` item; raises MessageError when malformed."""
        data = _check_keys("votes", item, {"ts", "p"})
        return cls(data["ts"], _check_probs("votes.p", data["p"]))


@dataclass(frozen=True, slots=True)
class VisitEmotion:
    """A finished visit with its emotion: ``probs`` = mean of its votes' probabilities (None: unreadable);
    ``zone``: the camera zone it belongs to (None: no zone)."""

    started_ms: int
    ended_ms: int
    faces: int
    readable_faces: int
    probs: tuple[float, ...] | None
    zone: str | None = None

    def __post_init__(self) -> None:
        _check_zone("visits.zone", self.zone)
        _check_int("visits.start", self.started_ms)
        _check_int("visits.end", self.ended_ms, self.started_ms)
        _check_int("visits.faces", self.faces, 1)
        _check_int("visits.readable", self.readable_faces, 0, self.faces)
        if self.probs is not None:
            _check_probs("visits.p", self.probs)

    @property
    def dwell_ms(self) -> int:
        """Time from the first to the last observation of the visit."""
        return self.ended_ms - self.started_ms

    @property
    def emotion(self) -> str | None:
        """The visit's emotion (argmax of the mean probabilities), None for an unreadable visit."""
        return None if self.probs is None else _emotion_of(self.probs)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form."""
        probs = None if self.probs is None else [float(np.float32(p)) for p in self.probs]
        return {
            "start": self.started_ms,
            "end": self.ended_ms,
            "faces": self.faces,
            "readable": self.readable_faces,
            "p": probs,
            **({} if self.zone is None else {"zone": self.zone}),
        }

    @classmethod
    def from_json(cls, item: object) -> VisitEmotion:
        """Parse one ``visits`` item; raises MessageError when malformed."""
        data = _check_keys("visits", item, {"start", "end", "faces", "readable", "p"}, _ZONE_KEY)
        probs = None if data["p"] is None else _check_probs("visits.p", data["p"])
        zone = data.get("zone")
        return cls(data["start"], data["end"], data["faces"], data["readable"], probs, zone)


@dataclass(frozen=True, slots=True)
class EmotionsMessage:
    """``emotions`` stream: one frame's counts and the visits that ended at it, with emotions (classifier ->
    aggregator).

    ``faces``/``readable_faces``: faces detected in the frame / passing the quality gate; ``votes``: the
    faces classified for this frame's ended visits (face-level statistics, each in its own capture bucket);
    ``visits``: the visits that ended at this frame (each counted in the bucket of its start).
    """

    KIND: ClassVar[str] = "emotions"
    key: FrameKey
    captured_ms: int
    faces: int
    readable_faces: int
    votes: tuple[ClassifiedVote, ...] = ()
    visits: tuple[VisitEmotion, ...] = ()

    def __post_init__(self) -> None:
        _check_int("ts", self.captured_ms)
        _check_int("faces", self.faces, 0, MAX_FACES)
        _check_int("readable", self.readable_faces, 0, self.faces)
        if len(self.visits) > MAX_VISITS:
            raise _fail("visits", f"at most {MAX_VISITS} visits", len(self.visits))
        if len(self.votes) > MAX_VISITS * MAX_VOTES:
            raise _fail("votes", f"at most {MAX_VISITS * MAX_VOTES} votes", len(self.votes))

    def encode(self) -> Fields:
        """Field map for XADD."""
        return {
            **_header(self.KIND),
            **self.key.to_fields(),
            b"ts": str(self.captured_ms).encode(),
            b"faces": str(self.faces).encode(),
            b"readable": str(self.readable_faces).encode(),
            b"votes": json.dumps([v.to_json() for v in self.votes], separators=(",", ":")).encode(),
            b"visits": json.dumps([v.to_json() for v in self.visits], separators=(",", ":")).encode(),
        }

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> EmotionsMessage:
        """Parse an ``emotions`` entry; raises MessageError."""
        _expect_kind(fields, cls.KIND)
        votes_limit = MAX_VISITS * MAX_VOTES
        votes = tuple(ClassifiedVote.from_json(item) for item in _json_list(fields, "votes", votes_limit))
        visits = tuple(VisitEmotion.from_json(item) for item in _json_list(fields, "visits", MAX_VISITS))
        return cls(
            FrameKey.from_fields(fields),
            _int_field(fields, "ts"),
            _int_field(fields, "faces", 0, MAX_FACES),
            _int_field(fields, "readable", 0, MAX_FACES),
            votes,
            visits,
        )

    def vote_emotion_counts(self) -> dict[str, int]:
        """Classified faces per emotion (argmax of each vote), every label present."""
        counts = dict.fromkeys(EMOTIONS, 0)
        for vote in self.votes:
            counts[vote.emotion] += 1
        return counts


LOSS_KINDS: Final[tuple[str, ...]] = ("dead", "shed")
"""``dead``: failed too often or malformed; ``shed``: trimmed by a stream cap before being processed."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """``dead`` stream: an entry that was given up on, with the reason. Never carries the payload.

    ``key``/``captured_ms`` are the frame's identity when the entry was readable enough to know it.
    """

    KIND: ClassVar[str] = "dead"
    source_stream: str
    entry_id: str
    stage: str
    reason: str
    deliveries: int
    failed_ms: int
    loss: str = "dead"
    key: FrameKey | None = None
    captured_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("source_stream", "entry_id", "stage"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= 200:
                raise _fail(name, "text of 1 to 200 characters", value)
        if not isinstance(self.reason, str) or not self.reason:
            raise _fail("reason", "non-empty text", self.reason)
        _check_int("deliveries", self.deliveries)
        _check_int("failed", self.failed_ms)
        if self.loss not in LOSS_KINDS:
            raise _fail("loss", f"one of {LOSS_KINDS}", self.loss)
        if (self.key is None) != (self.captured_ms is None):
            raise _fail("ts", "a capture time exactly when the frame identity is known", self.captured_ms)
        if self.captured_ms is not None:
            _check_int("ts", self.captured_ms)

    def encode(self) -> Fields:
        """Field map for XADD."""
        out = {
            **_header(self.KIND),
            b"source": self.source_stream.encode(),
            b"entry": self.entry_id.encode(),
            b"stage": self.stage.encode(),
            b"reason": self.reason[:MAX_REASON_CHARS].encode("utf-8", "replace"),
            b"deliveries": str(self.deliveries).encode(),
            b"failed": str(self.failed_ms).encode(),
            b"loss": self.loss.encode(),
        }
        if self.key is not None and self.captured_ms is not None:
            out.update(self.key.to_fields())
            out[b"ts"] = str(self.captured_ms).encode()
        return out

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> DeadLetter:
        """Parse a ``dead`` entry; raises MessageError."""
        _expect_kind(fields, cls.KIND)
        key = FrameKey.from_fields(fields) if b"store" in fields else None
        reason = _raw(fields, "reason").decode("utf-8", "replace")
        return cls(
            source_stream=_text(fields, "source"),
            entry_id=_text(fields, "entry"),
            stage=_text(fields, "stage"),
            reason=reason,
            deliveries=_int_field(fields, "deliveries"),
            failed_ms=_int_field(fields, "failed"),
            loss=_text(fields, "loss"),
            key=key,
            captured_ms=_int_field(fields, "ts") if key is not None else None,
        )


Message = FrameMessage | FacesMessage | TracksMessage | EmotionsMessage | DeadLetter

MessageType = (
    type[FrameMessage] | type[FacesMessage] | type[TracksMessage] | type[EmotionsMessage] | type[DeadLetter]
)
MESSAGE_TYPES: Final[dict[str, MessageType]] = {
    cls.KIND: cls for cls in (FrameMessage, FacesMessage, TracksMessage, EmotionsMessage, DeadLetter)
}
"""Message class by its wire ``type`` field."""


def _expect_kind(fields: Mapping[bytes, bytes], kind: str) -> None:
    version = _text(fields, "v")
    if version != str(WIRE_VERSION):
        raise _fail("v", f"wire version {WIRE_VERSION}", version)
    actual = _text(fields, "type")
    if actual != kind:
        raise _fail("type", repr(kind), actual)


def decode_message(fields: Mapping[Any, Any]) -> Message:
    """Decode any stream entry by its ``type`` field; raises MessageError."""
    normal = normalise_fields(fields)
    kind = _text(normal, "type")
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise _fail("type", f"one of {sorted(MESSAGE_TYPES)}", kind)
    return cls.decode(normal)


def frame_key_if_readable(fields: Mapping[Any, Any]) -> tuple[FrameKey, int] | None:
    """The (identity, capture ms) of an entry when those fields parse, else None (for dead letters)."""
    try:
        normal = normalise_fields(fields)
        return FrameKey.from_fields(normal), _int_field(normal, "ts")
    except MessageError:
        return None


def stack_crops(crops: Sequence[np.ndarray], size: tuple[int, int], color: str) -> np.ndarray:
    """Stack per-face crops into one (N, H, W[, 3]) uint8 array; N may be 0 (``size`` is (w, h))."""
    w, h = size
    shape: tuple[int, ...] = (0, h, w) if color == "gray" else (0, h, w, 3)
    if not crops:
        return np.zeros(shape, dtype=np.uint8)
    return np.stack([np.asarray(c, dtype=np.uint8) for c in crops])
