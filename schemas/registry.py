"""The camera registry (stores.yaml): strict pydantic models and a loader that reports every mistake with
its file, line and key.

``load_registry(path) -> Registry`` reads the YAML with ruamel.yaml (keeping line numbers), replaces
``${VAR}`` / ``${VAR:-default}`` in string values from the environment (``$${`` writes a literal ``${``),
resolves relative file sources against the YAML file's folder, and validates. Any mistake raises
``RegistryError`` whose ``problems`` list holds every problem found (file, line, key path, message).

Regenerate the JSON Schema for editors with ``python -m moodstream.schemas.registry --write``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from moodstream.schemas import defaults
from moodstream.schemas.hours import HoursException, OpeningHours, WeeklyHours
from moodstream.schemas.regions import MAX_POLYGONS, Polygon, Zone
from moodstream.schemas.visit_config import GateConfig, ReorderConfig, TrackerConfig, VisitConfig

SCHEMA_PATH: Final[Path] = Path(__file__).with_name("stores.schema.json")
SLUG_PATTERN: Final[str] = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
SLUG_WORDS: Final[str] = (
    "1-64 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit"
)
DURATION_PATTERN: Final[str] = r"^\s*(\d+)\s*(s|m|h)\s*$"
NETWORK_SCHEMES: Final[frozenset[str]] = frozenset({"rtsp", "rtsps", "http", "https"})
MAX_WEBCAM_INDEX: Final[int] = 63
MIN_START: Final[datetime] = datetime(1971, 1, 1, tzinfo=UTC)
MAX_START: Final[datetime] = datetime(2999, 12, 31, tzinfo=UTC)
"""Bounds of a camera's ``start`` (recorded footage)."""
BUCKET_ALIGNMENT_SECONDS: Final[int] = 900
"""Buckets must divide 15 minutes: every time zone's UTC offset is a multiple of 15 minutes, so no bucket
ever straddles a local midnight and per-day reports stay exact."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``"60s"``, ``"5m"`` or ``"1h"``; ValueError when malformed."""
    match = re.match(DURATION_PATTERN, text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a whole number with s, m or h, e.g. 60s or 5m")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class PipelineConfig(_Strict):
    """Settings of the streaming pipeline shared by every camera."""

    bucket: str = Field(
        default=f"{defaults.BUCKET_SECONDS}s",
        pattern=DURATION_PATTERN,
        description="Width of an aggregation bucket, e.g. 10s, 60s, 5m, 15m: 1s to 15m and dividing 15m "
        "evenly, so no bucket straddles a local midnight.",
        examples=["60s", "5m"],
    )
    stream_maxlen: int = Field(
        default=defaults.STREAM_MAXLEN,
        ge=50,
        le=1_000_000,
        description="Cap on entries per Redis stream: the frames stream sheds its oldest frames beyond it "
        "(counted in frame_losses); a later stream at its cap makes the stage before it wait (backpressure).",
    )
    results_maxlen: int | None = Field(
        default=None,
        ge=50,
        le=10_000_000,
        description="Approximate cap on the emotions (results) stream; left out: stream_maxlen. Results are "
        "small (no image), so a store box (store-edge mode) sets it high: it bounds what waits at the store "
        "while the WAN link is down (the forwarder sheds, counted, beyond 90% of it).",
    )
    max_deliveries: int = Field(
        default=defaults.MAX_DELIVERIES,
        ge=1,
        le=100,
        description="Deliveries of one stream entry before it is moved to the dead-letter stream.",
    )
    reclaim_idle: str = Field(
        default=f"{defaults.RECLAIM_IDLE_SECONDS}s",
        pattern=DURATION_PATTERN,
        description="How long an entry may stay pending with a silent worker before another worker "
        "reclaims it: 1s to 1h.",
    )
    jpeg_quality: int = Field(
        default=defaults.JPEG_QUALITY,
        ge=10,
        le=100,
        description="JPEG quality of frames on the frames stream (10-100).",
    )
    max_frame_pixels: int = Field(
        default=defaults.MAX_FRAME_PIXELS,
        ge=320 * 240,
        le=defaults.FRAME_PIXELS_CAP,
        description="Camera frames with more pixels (width x height) are downscaled at ingest, keeping "
        "their aspect ratio, to at most this many (default 4K UHD, 8294400).",
    )
    visits: VisitConfig = Field(
        default_factory=VisitConfig,
        description="How faces become visits (quality gate, tracker, votes per visit) for every camera; "
        "a camera's own `visits:` overrides single keys.",
    )
    reorder: ReorderConfig = Field(
        default_factory=ReorderConfig,
        description="The tracker stage's per-camera reorder window and idle flush.",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_divides_alignment(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not 1 <= seconds <= BUCKET_ALIGNMENT_SECONDS or BUCKET_ALIGNMENT_SECONDS % seconds:
            raise ValueError(
                f"bucket {value} must be between 1s and 15m and divide 15m evenly "
                "(e.g. 10s, 30s, 60s, 5m, 15m)"
            )
        return value

    @field_validator("reclaim_idle")
    @classmethod
    def _reclaim_bounds(cls, value: str) -> str:
        if not 1 <= parse_duration(value) <= 3600:
            raise ValueError(f"reclaim_idle {value} must be between 1s and 1h")
        return value

    @property
    def bucket_seconds(self) -> int:
        """Bucket width in seconds."""
        return parse_duration(self.bucket)

    @property
    def reclaim_idle_seconds(self) -> int:
        """reclaim_idle in seconds."""
        return parse_duration(self.reclaim_idle)


M = TypeVar("M", bound=BaseModel)


def _inherited() -> None:
    """Value of an override key the file leaves out: none (the pipeline value applies). A factory rather
    than a plain ``None`` default, so the override states no default of its own."""
    return None


def partial_model(model: type[M], name: str) -> type[M]:
    """A copy of ``model`` whose every key is optional (nested models too), with the same bounds.

    Keys left out stay unset (``model_dump(exclude_unset=True)`` gives only what the file wrote); an
    explicit ``null`` is refused like any value of the wrong type.
    """
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = partial_model(annotation, annotation.__name__.removesuffix("Config") + "Override")
        bounded = Annotated[annotation, *info.metadata] if info.metadata else annotation
        fields[key] = (bounded, Field(default_factory=_inherited, description=info.description))
    config = ConfigDict(extra="forbid", frozen=True)
    doc = f"{model.__doc__ or model.__name__} Every key is optional: one left out keeps the pipeline value."
    return cast("type[M]", create_model(name, __config__=config, __doc__=doc, **fields))


if TYPE_CHECKING:
    VisitOverride = VisitConfig
else:
    VisitOverride = partial_model(VisitConfig, "VisitOverride")
"""``cameras[].visits``: single keys of ``pipeline.visits`` overridden for one camera."""


def merge_visit_config(base: VisitConfig, override: BaseModel | None) -> VisitConfig:
    """``base`` with the keys ``override`` sets (nested gate/tracker keys one by one) replaced."""
    if override is None:
        return base
    merged = base.model_dump()
    for key, value in override.model_dump(exclude_unset=True).items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return VisitConfig.model_validate(merged)


SourceKind = Literal["file", "network", "webcam"]


class DetectionConfig(_Strict):
    """How one camera's frames are searched for faces."""

    min_face_size: int = Field(
        default=defaults.MIN_FACE_SIZE,
        ge=12,
        le=1024,
        description="Smallest face side (frame pixels) that must be found on this camera. Above the "
        f"detector's {defaults.MIN_FACE_SIZE} px the frame is shrunk by "
        f"{defaults.MIN_FACE_SIZE}/min_face_size "
        "before detection, which cuts the detector's work by about that ratio squared.",
    )
    motion: bool = Field(
        default=True,
        description="Motion gating: run the detector only on regions that changed since this camera's "
        "previous frame and around the faces found there; a frame with nothing to look at costs no "
        "detector run. false: every frame is searched whole.",
    )
    full_frame_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="With motion gating, search a whole frame at least this often (seconds; 0: only "
        "when the gate cannot compare frames), so a face that appeared without moving is found.",
    )


def classify_source(source: int | str) -> SourceKind:
    """``webcam`` for an index, ``network`` for rtsp(s)/http(s) URLs, ``file`` for anything else."""
    if isinstance(source, int):
        return "webcam"
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return "network" if scheme in NETWORK_SCHEMES else "file"


class Camera(_Strict):
    """One camera of a store."""

    id: str = Field(
        pattern=SLUG_PATTERN,
        description=f"Camera id, unique within its store: {SLUG_WORDS}.",
        examples=["entrance"],
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Human-readable name; defaults to the id."
    )
    source: int | str = Field(
        description="Video file (path relative to this YAML file), rtsp(s):// or http(s):// URL, or webcam "
        f"index 0-{MAX_WEBCAM_INDEX}. Put passwords in environment variables: rtsp://${{CAM_USER}}:${{CAM_PASS}}@host/",
        examples=["videos/counter.mp4", "rtsp://${CAM_USER}:${CAM_PASS}@192.0.2.10/stream1", 0],
    )
    fps: float = Field(gt=0, le=60, description="Frames sampled per second (more than 0, at most 60).")
    loop: bool = Field(default=False, description="Restart a video file at its end (files only).")
    start: datetime | None = Field(
        default=None,
        description="Recorded footage (files only, not with loop): when the file's first frame was "
        "recorded, an ISO 8601 time with its zone, e.g. 2026-03-01T09:00:00+07:00. Each frame's capture "
        "time is then start + its position in the video, the file is read as fast as the pipeline takes "
        "it, and reading it again counts nothing twice. Left out: the container's creation time when "
        "it records one, else the time the file is read.",
        examples=["2026-03-01T09:00:00+07:00"],
    )
    enabled: bool = Field(default=True, description="false keeps the camera registered but stops reading it.")
    faces_staff: bool = Field(
        default=False,
        description="Must be false. A camera that films staff at work is refused: the EU AI Act "
        "(Art. 5(1)(f)) "
        "prohibits emotion recognition in the workplace.",
    )
    visits: VisitOverride | None = Field(
        default=None,
        description="Keys of pipeline.visits overridden for this camera only (e.g. a smaller "
        "gate.min_face_size for a camera mounted far away); keys left out keep the pipeline value.",
    )
    masks: list[Polygon] = Field(
        default_factory=list,
        max_length=MAX_POLYGONS,
        description="Areas blanked before detection (a till, a staff-only door): no face there is ever "
        "detected, tracked or counted. Polygons in fractions of the frame's width and height (0-1).",
    )
    zones: list[Zone] = Field(
        default_factory=list,
        max_length=MAX_POLYGONS,
        description="Named areas whose visits are also counted on their own (zone_visits, report --zone). "
        "A visit belongs to the zone that held its face centre in most of its frames (first zone listed "
        "wins where zones overlap).",
    )
    detection: DetectionConfig = Field(
        default_factory=DetectionConfig,
        description="How this camera's frames are searched for faces (smallest face, motion gating).",
    )

    @field_validator("zones")
    @classmethod
    def _unique_zone_ids(cls, zones: list[Zone]) -> list[Zone]:
        _raise_on_duplicate([z.id for z in zones], "zone")
        return zones

    @field_validator("source", mode="before")
    @classmethod
    def _source_shape(cls, value: object, info: ValidationInfo) -> int | str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("source must be a file path, an rtsp:// or http(s):// URL, or a webcam index")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int):
            if not 0 <= value <= MAX_WEBCAM_INDEX:
                raise ValueError(f"webcam index {value} is out of range 0-{MAX_WEBCAM_INDEX}")
            return value
        return _check_text_source(value.strip(), info)

    @field_validator("start")
    @classmethod
    def _start_has_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(
                "start has no time zone; write it with its offset, e.g. 2026-03-01T09:00:00+07:00 "
                "or 2026-03-01T02:00:00Z"
            )
        if value is not None and not MIN_START <= value <= MAX_START:
            raise ValueError("start must lie between the years 1971 and 2999")
        return value

    @model_validator(mode="after")
    def _start_only_for_recorded_files(self) -> Camera:
        if self.start is not None and self.source_kind != "file":
            raise ValueError("start applies to recorded video files only, not to live cameras")
        if self.start is not None and self.loop:
            raise ValueError("start cannot be combined with loop: a looped file would repeat its times")
        return self

    @field_validator("faces_staff")
    @classmethod
    def _refuse_staff_cameras(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "this camera faces staff and is refused: the EU AI Act (Art. 5(1)(f)) prohibits emotion "
                "recognition in the workplace; remove the camera or aim it at customers only"
            )
        return value

    @property
    def display_name(self) -> str:
        """The name, or the id when no name is given."""
        return self.name or self.id

    @property
    def source_kind(self) -> SourceKind:
        """``file``, ``network`` or ``webcam``."""
        return classify_source(self.source)


def _check_text_source(text: str, info: ValidationInfo) -> str:
    """Validate a file path or URL source; relative file paths become absolute against the YAML folder."""
    if not text:
        raise ValueError("source is empty; give a file path, an rtsp:// or http(s):// URL, or a webcam index")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in NETWORK_SCHEMES:
            raise ValueError(
                f"unsupported source scheme {scheme}://; use rtsp://, rtsps://, http:// or https://"
            )
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if not host:
            raise ValueError(f"the {scheme}:// source has no host name")
        return text
    if "\x00" in text:
        raise ValueError("source file path contains a NUL character")
    base_dir = (info.context or {}).get("base_dir")
    path = Path(text).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return os.path.normpath(path)


class Store(_Strict):
    """One store and its cameras."""

    id: str = Field(
        pattern=SLUG_PATTERN,
        description=f"Stable store id used in PostgreSQL and dashboards: {SLUG_WORDS}.",
        examples=["hn-trangtien"],
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Human-readable name; defaults to the id."
    )
    branch: str = Field(
        pattern=SLUG_PATTERN, description=f"Branch the store belongs to (reports group by it): {SLUG_WORDS}."
    )
    timezone: str = Field(
        min_length=1, max_length=64, description="IANA time zone of the store, e.g. Asia/Ho_Chi_Minh."
    )
    enabled: bool = Field(
        default=True, description="false keeps the store registered but reads none of its cameras."
    )
    hours: OpeningHours | None = Field(
        default=None,
        description="Opening hours in the store's time zone (weekly schedule and dated exceptions); outside "
        "them its cameras are not read and silent-camera alerts stay quiet. Left out: always open.",
    )
    cameras: list[Camera] = Field(min_length=1, max_length=256, description="The store's cameras (1-256).")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from None
        return value

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[Camera]) -> list[Camera]:
        _raise_on_duplicate([c.id for c in cameras], "camera")
        return cameras

    @property
    def display_name(self) -> str:
        """The name, or the id when no name is given."""
        return self.name or self.id

    def is_open(self, at: datetime) -> bool:
        """Whether the store is open at the aware instant ``at`` (always, without ``hours``)."""
        return self.hours is None or self.hours.is_open(at, self.timezone)


def _raise_on_duplicate(ids: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for index, ident in enumerate(ids):
        if ident in seen:
            raise PydanticCustomError(
                "duplicate_id",
                "duplicate {what} id '{ident}' (already used by {what} number {first}); ids must be unique",
                {"what": what, "ident": ident, "first": seen[ident] + 1, "index": index},
            )
        seen[ident] = index


class Registry(_Strict):
    """The whole stores.yaml: pipeline settings and the stores with their cameras."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="moodstream camera registry (stores.yaml)",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(description="Format version of this file; only 1 exists.")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, description="Pipeline settings.")
    stores: list[Store] = Field(min_length=1, max_length=10_000, description="The stores and their cameras.")
    _secrets: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("stores")
    @classmethod
    def _unique_store_ids(cls, stores: list[Store]) -> list[Store]:
        _raise_on_duplicate([s.id for s in stores], "store")
        return stores

    @property
    def secrets(self) -> frozenset[str]:
        """Values substituted from environment variables (treated as secrets by redaction)."""
        return self._secrets

    def cameras(self, *, enabled_only: bool = True) -> Iterator[tuple[Store, Camera]]:
        """(store, camera) pairs in file order; ``enabled_only``: only enabled cameras of enabled stores."""
        for store in self.stores:
            for camera in store.cameras:
                if not enabled_only or (store.enabled and camera.enabled):
                    yield store, camera

    def camera(self, store_id: str, camera_id: str) -> Camera:
        """The camera ``store_id``/``camera_id``; UnknownCameraError when the registry does not hold it."""
        for store in self.stores:
            for camera in store.cameras:
                if store.id == store_id and camera.id == camera_id:
                    return camera
        raise UnknownCameraError(f"camera {store_id}/{camera_id} is not in the registry")

    def visit_config(self, store_id: str, camera_id: str) -> VisitConfig:
        """The camera's resolved visit settings: ``pipeline.visits`` with the camera's overrides applied.

        Raises UnknownCameraError when the store or camera is not in the registry.
        """
        for store in self.stores:
            for camera in store.cameras:
                if store.id == store_id and camera.id == camera_id:
                    return merge_visit_config(self.pipeline.visits, camera.visits)
        raise UnknownCameraError(f"camera {store_id}/{camera_id} is not in the registry")

    def redacted_source(self, camera: Camera) -> str:
        """The camera's source with URL passwords and every substituted secret shown as ``***``."""
        from moodstream.common.redaction import redact_text

        return redact_text(str(camera.source), self._secrets)

    def missing_files(self) -> list[tuple[Store, Camera]]:
        """Enabled cameras whose file source does not exist (yet)."""
        return [
            (s, c) for s, c in self.cameras() if c.source_kind == "file" and not Path(str(c.source)).is_file()
        ]


# --------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class RegistryProblem:
    """One mistake in a registry file: where it is and what to do about it."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RegistryError(ValueError):
    """The registry file has mistakes; ``problems`` lists every one (file, line, key path, message)."""

    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UnknownCameraError(LookupError):
    """A (store id, camera id) that the registry does not hold."""


Loc = tuple[str | int, ...]
_SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|AUTH", re.IGNORECASE)
"""Variables whose value is a secret however short; any other substituted value of 4+ chars is one too."""
_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def load_registry(path: Path | str, environ: Mapping[str, str] | None = None) -> Registry:
    """Load and validate stores.yaml; RegistryError listing every problem (never a traceback-worthy error)."""
    file = Path(path)
    env = os.environ if environ is None else environ
    tree, lines = _read_yaml(file)
    problems: list[RegistryProblem] = []
    secrets: set[str] = set()
    try:
        data = _interpolate(tree, (), env, lines, str(file), problems, secrets, _Budget())
    except _TooComplex as exc:
        raise RegistryError([RegistryProblem(str(file), None, "", f"not a stores.yaml: {exc}")]) from None
    registry: Registry | None = None
    try:
        registry = Registry.model_validate(data, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc, lines, str(file)))
        problems.extend(_raw_duplicate_problems(data, lines, str(file), problems))
    if problems or registry is None:
        raise RegistryError(sorted(problems, key=lambda p: (p.line or 0, p.key)))
    registry._secrets = frozenset(secrets)
    return registry


def _read_yaml(file: Path) -> tuple[Any, dict[Loc, int]]:
    """The plain data tree of the file and a map from key path to 1-based line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    def fail(line: int | None, message: str) -> RegistryError:
        return RegistryError([RegistryProblem(str(file), line, "", message)])

    try:
        with file.open(encoding="utf-8") as handle:
            text = handle.read(MAX_FILE_CHARS + 1)
    except FileNotFoundError:
        raise fail(None, "file not found") from None
    except IsADirectoryError:
        raise fail(None, "is a directory, expected a stores.yaml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise fail(None, f"cannot read the file ({reason})") from None
    if len(text) > MAX_FILE_CHARS:
        raise fail(
            None,
            f"not a stores.yaml: larger than {MAX_FILE_CHARS:,} characters (10,000 stores take far less)",
        )
    try:
        tree = YAML(typ="rt").load(text)
    except RecursionError:
        raise fail(None, f"not a stores.yaml: nested deeper than {MAX_DEPTH} levels") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise fail(line, f"not valid YAML: {_yaml_problem(exc)}") from None
    except YAMLError as exc:
        raise fail(None, f"not valid YAML: {exc}") from None
    except ValueError:  # an integer of thousands of digits (Python's int limit), an impossible date
        raise fail(
            None, "not valid YAML: a value cannot be read (a number far too long, or a date like 2026-02-30?)"
        ) from None
    if not isinstance(tree, dict):
        raise fail(1, "not a stores.yaml: expected keys such as 'version:' and 'stores:' at the top level")
    lines: dict[Loc, int] = {(): 1}
    try:
        return _plain(tree, (), lines, _Budget()), lines
    except _TooComplex as exc:
        raise fail(None, f"not a stores.yaml: {exc}") from None


def _yaml_problem(exc: Any) -> str:
    """The parser's complaint, without echoing values (a duplicated key's value may be a secret)."""
    problem = str(exc.problem or exc.context or "syntax error")
    duplicate = re.match(r'found duplicate key "([^"]*)"', problem)
    if duplicate:
        return f"key '{duplicate.group(1)}' appears twice in the same block; keep one"
    return problem


MAX_NODES: Final[int] = 200_000
MAX_DEPTH: Final[int] = 32
MAX_FILE_CHARS: Final[int] = 4_000_000
"""Largest stores.yaml read (a registry of 10,000 stores with a few cameras each is about 3 MB)."""
MAX_EXPANDED_CHARS: Final[int] = 8_000_000
"""Most characters in all values together once aliases are expanded and ``${VAR}`` substituted: bounds the
memory of a file that reuses one long string through aliases (each use is a copy once substituted)."""


class _TooComplex(Exception):
    """The YAML tree exceeds MAX_NODES values, MAX_DEPTH levels or MAX_EXPANDED_CHARS characters once
    expanded (e.g. an alias bomb); the message says which."""


class _Budget:
    """Characters of the expanded tree so far; _TooComplex past MAX_EXPANDED_CHARS."""

    def __init__(self) -> None:
        self.chars = 0

    def spend(self, chars: int) -> None:
        self.chars += chars
        if self.chars > MAX_EXPANDED_CHARS:
            raise _TooComplex(
                f"its values expand (through aliases or ${{VAR}} substitution) to more than "
                f"{MAX_EXPANDED_CHARS:,} characters"
            )


def _line_of_position(position: Any, lines: dict[Loc, int], parent: Loc) -> int:
    """1-based line of a ruamel (line, column) position; the parent's line when ruamel kept none
    (nodes under an explicit tag such as ``!!python/object``)."""
    return int(position[0]) + 1 if position else lines.get(parent, 1)


def _plain(node: Any, loc: Loc, lines: dict[Loc, int], budget: _Budget) -> Any:
    """Copy a ruamel tree into dicts/lists/scalars, recording each key's and item's line.

    Aliases are expanded, so the copy is bounded: _TooComplex beyond MAX_NODES values, MAX_DEPTH levels
    or MAX_EXPANDED_CHARS characters of keys and strings.
    """
    if len(lines) > MAX_NODES or len(loc) > MAX_DEPTH:
        raise _TooComplex(f"more than {MAX_NODES} values or {MAX_DEPTH} levels")
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            name = str(key)
            budget.spend(len(name))
            child = (*loc, name)
            lines[child] = _line_of_position(node.lc.key(key), lines, loc)  # type: ignore[attr-defined]
            out[str(key)] = _plain(value, child, lines, budget)
        return out
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            child = (*loc, index)
            lines[child] = _line_of_position(node.lc.item(index), lines, loc)  # type: ignore[attr-defined]
            items.append(_plain(value, child, lines, budget))
        return items
    if isinstance(node, str):
        budget.spend(len(node))
        return str(node)
    return node


def _interpolate(
    node: Any,
    loc: Loc,
    env: Mapping[str, str],
    lines: dict[Loc, int],
    file: str,
    problems: list[RegistryProblem],
    secrets: set[str],
    budget: _Budget,
) -> Any:
    """Replace ``${VAR}`` in every string; a missing variable becomes a problem at its line.

    Each substituted string is a new copy, so their total length is bounded (_TooComplex).
    """
    if isinstance(node, dict):
        return {
            k: _interpolate(v, (*loc, k), env, lines, file, problems, secrets, budget)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _interpolate(v, (*loc, i), env, lines, file, problems, secrets, budget)
            for i, v in enumerate(node)
        ]
    if not isinstance(node, str) or "$" not in node:
        return node

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            problems.append(_problem(file, lines, loc, "malformed variable reference; write ${NAME}"))
            return token
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            problems.append(
                _problem(file, lines, loc, f"environment variable {name} is not set; export {name}=... first")
            )
            return ""
        if value and (len(value) >= 4 or _SECRET_NAME.search(name)):
            secrets.add(value)
        budget.spend(len(value))
        return value

    budget.spend(len(node))  # the copy's own text (each substituted value was counted as it went in)
    return _VARIABLE.sub(replace, node)


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """Line of the longest prefix of ``loc`` present in the line map."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _key_path(loc: Loc) -> str:
    """``stores[0].cameras[1].fps`` for ('stores', 0, 'cameras', 1, 'fps')."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(file: str, lines: dict[Loc, int], loc: Loc, message: str) -> RegistryProblem:
    return RegistryProblem(file, _line_of(lines, loc), _key_path(loc), message)


_MODEL_BY_PATH: Final[dict[tuple[str, ...], type[BaseModel]]] = {
    (): Registry,
    ("pipeline",): PipelineConfig,
    ("stores",): Store,
    ("stores", "cameras"): Camera,
    ("stores", "hours"): OpeningHours,
    ("stores", "hours", "weekly"): WeeklyHours,
    ("stores", "hours", "exceptions"): HoursException,
    ("pipeline", "visits"): VisitConfig,
    ("pipeline", "visits", "gate"): GateConfig,
    ("pipeline", "visits", "tracker"): TrackerConfig,
    ("pipeline", "reorder"): ReorderConfig,
    ("stores", "cameras", "visits"): VisitConfig,
    ("stores", "cameras", "zones"): Zone,
    ("stores", "cameras", "detection"): DetectionConfig,
    ("stores", "cameras", "visits", "gate"): GateConfig,
    ("stores", "cameras", "visits", "tracker"): TrackerConfig,
}


def _problems_from_validation(
    exc: ValidationError, lines: dict[Loc, int], file: str
) -> list[RegistryProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == "duplicate_id":
            loc = (*loc, int(ctx["index"]), "id")
        problems.append(_problem(file, lines, loc, _message(error, loc)))
    return problems


def _raw_duplicate_problems(
    data: Any, lines: dict[Loc, int], file: str, known: list[RegistryProblem]
) -> list[RegistryProblem]:
    """Duplicate store/camera ids found in the raw data, for when other errors kept pydantic from checking.

    Pydantic checks uniqueness only once every item is valid; this reports duplicates together with the
    other problems. Ids already reported (same key path) are skipped.
    """
    reported = {p.key for p in known}
    found: list[RegistryProblem] = []

    def scan(items: Any, base: Loc, what: str) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items if isinstance(items, list) else []):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                continue
            loc: Loc = (*base, index, "id")
            if ident in seen and _key_path(loc) not in reported:
                message = (
                    f"duplicate {what} id '{ident}' (already used by {what} number {seen[ident] + 1}); "
                    "ids must be unique"
                )
                found.append(_problem(file, lines, loc, message))
            seen.setdefault(ident, index)

    stores = data.get("stores") if isinstance(data, dict) else None
    scan(stores, ("stores",), "store")
    for index, store in enumerate(stores if isinstance(stores, list) else []):
        if isinstance(store, dict):
            scan(store.get("cameras"), ("stores", index, "cameras"), "camera")
    return found


def _message(error: Any, loc: Loc) -> str:
    """Words a store manager can act on for one pydantic error (never echoes a string: it may be secret)."""
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _MODEL_BY_PATH.get(tuple(p for p in loc[:-1] if isinstance(p, str)))
        allowed = ", ".join(model.model_fields) if model else "see the documentation"
        return f"unknown key '{loc[-1]}'; allowed keys here: {allowed}"
    if kind == "missing":
        return f"required key '{loc[-1]}' is missing"
    if kind == "literal_error" and loc == ("version",):
        return "unsupported version; this moodstream reads version: 1"
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern == SLUG_PATTERN:
            return f"must be {SLUG_WORDS}"
        if pattern == DURATION_PATTERN:
            return "must be a duration: a whole number with s, m or h, e.g. 60s or 5m"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be").replace("String should", "must")
    message = message.replace("List should", "must").replace(" after validation", "")
    message = message.replace("Tuple should", "must").replace("a valid tuple", "a list")
    message = message.replace("greater than or equal to", ">=").replace("less than or equal to", "<=")
    value = error.get("input")
    if isinstance(value, int | float) and not isinstance(value, bool) and kind not in ("value_error",):
        message += f" (found {value})"
    return message


def registry_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of stores.yaml, for editor completion and validation."""
    return Registry.model_json_schema(mode="validation")


def _main(argv: list[str]) -> int:
    """``python -m moodstream.schemas.registry [--write]``: print the JSON Schema or write the file."""
    text = json.dumps(registry_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if argv[1:] == ["--write"]:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}")
    elif argv[1:]:
        print("usage: python -m moodstream.schemas.registry [--write]", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
