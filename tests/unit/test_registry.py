"""The camera registry loader: valid files load, and each mistake is reported with file, line and key."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from moodstream.schemas.registry import (
    MAX_FILE_CHARS,
    SCHEMA_PATH,
    RegistryError,
    UnknownCameraError,
    load_registry,
    parse_duration,
    registry_json_schema,
)
from moodstream.schemas.visit_config import GateConfig, ReorderConfig, TrackerConfig, VisitConfig
from tests.unit.helpers import VALID_REGISTRY_YAML as GOOD
from tests.unit.helpers import reused_through_aliases

REPO = Path(__file__).resolve().parents[2]

ENV = {"CAM_USER": "viewer", "CAM_PASS": "p@ss:w%40rd"}


def write(tmp_path: Path, text: str, name: str = "stores.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_registry_loads_with_interpolation_and_relative_paths(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD), ENV)
    (store, entrance), (_, counter) = list(registry.cameras())
    assert store.branch == "hanoi" and registry.pipeline.bucket_seconds == 60
    assert entrance.source == "rtsp://viewer:p@ss:w%40rd@192.0.2.10/stream1"
    assert entrance.source_kind == "network" and entrance.enabled and not entrance.loop
    assert counter.source == str(tmp_path / "videos" / "counter.mp4") and counter.loop
    # every substituted value of 4+ characters counts as a secret, the user name included
    assert registry.redacted_source(entrance) == "rtsp://***:***@192.0.2.10/stream1"
    assert "p@ss" not in registry.redacted_source(entrance)


def test_webcam_index_and_disabled_cameras(tmp_path: Path) -> None:
    text = GOOD.replace("source: videos/counter.mp4", "source: 1\n        enabled: false")
    registry = load_registry(write(tmp_path, text), ENV)
    assert [c.id for _, c in registry.cameras()] == ["entrance"]
    counter = registry.stores[0].cameras[1]
    assert counter.source == 1 and counter.source_kind == "webcam"


def test_default_value_and_escape_in_interpolation(tmp_path: Path) -> None:
    text = GOOD.replace("${CAM_USER}", "${NO_SUCH_VAR_X:-guest}").replace(
        "name: Trang Tien", "name: $${literal}"
    )
    registry = load_registry(write(tmp_path, text), {"CAM_PASS": "pw"})
    assert str(registry.stores[0].cameras[0].source).startswith("rtsp://guest:pw@")
    assert registry.stores[0].name == "${literal}"


# (case id, what to change in GOOD, expected line, expected key path, words expected in the message)
BAD_CASES = [
    (
        "unknown key",
        ("fps: 2", "fps: 2\n        fpss: 3"),
        13,
        "stores[0].cameras[0].fpss",
        "unknown key 'fpss'",
    ),
    (
        "duplicate camera id",
        ("id: counter", "id: entrance"),
        13,
        "stores[0].cameras[1].id",
        "duplicate camera id",
    ),
    ("fps 0", ("fps: 5", "fps: 0"), 15, "stores[0].cameras[1].fps", "greater than 0"),
    ("fps too high", ("fps: 5", "fps: 500"), 15, "stores[0].cameras[1].fps", "60"),
    ("bad time zone", ("Asia/Ho_Chi_Minh", "Asia/Hanoi_City"), 8, "stores[0].timezone", "unknown time zone"),
    (
        "missing env var",
        ("${CAM_PASS}", "${CAM_PASSWORD}"),
        11,
        "stores[0].cameras[0].source",
        "CAM_PASSWORD",
    ),
    ("not a slug", ("id: hn-trangtien", "id: HN Trang Tien"), 5, "stores[0].id", "lowercase letters"),
    ("missing key", ("    branch: hanoi\n", ""), 5, "stores[0].branch", "required key 'branch'"),
    ("bad bucket", ("bucket: 60s", "bucket: 7m"), 3, "pipeline.bucket", "divide 15m"),
    ("bucket not a duration", ("bucket: 60s", "bucket: often"), 3, "pipeline.bucket", "e.g. 60s"),
    (
        "bad scheme",
        ("source: videos/counter.mp4", "source: ftp://x/y"),
        14,
        "stores[0].cameras[1].source",
        "ftp",
    ),
    ("url without host", ("@192.0.2.10/stream1", "@/stream1"), 11, "stores[0].cameras[0].source", "no host"),
    (
        "webcam out of range",
        ("source: videos/counter.mp4", "source: 99"),
        14,
        "stores[0].cameras[1].source",
        "0-63",
    ),
    (
        "staff camera",
        ("loop: true", "loop: true\n        faces_staff: true"),
        17,
        "stores[0].cameras[1].faces_staff",
        "AI Act",
    ),
    ("wrong version", ("version: 1", "version: 2"), 1, "version", "version: 1"),
    ("yaml duplicate key", ("fps: 5", "fps: 5\n        fps: 6"), 16, "", "'fps' appears twice"),
    (
        "no cameras",
        ("    cameras:\n", "    cameras: []\n    x_cameras:\n"),
        10,
        "stores[0].x_cameras",
        "unknown key",
    ),
]


VISITS_YAML = """\
version: 1
pipeline:
  visits:
    gate:
      min_face_size: 24
    max_votes: 3
  reorder:
    max_frames: 16
stores:
  - id: s1
    branch: b
    timezone: UTC
    cameras:
      - id: far
        source: 0
        fps: 5
        visits:
          gate:
            min_score: 0.5
          tracker:
            max_gap_seconds: 1.5
      - id: near
        source: 1
        fps: 5
"""


# (case id, what to change in VISITS_YAML, expected line, expected key path, words in the message)
BAD_VISIT_CASES = [
    (
        "face size too small (camera)",
        ("min_score: 0.5", "min_face_size: 4"),
        19,
        "stores[0].cameras[0].visits.gate.min_face_size",
        "must be >= 12 (found 4)",
    ),
    (
        "face size too small (pipeline)",
        ("min_face_size: 24", "min_face_size: 8"),
        5,
        "pipeline.visits.gate.min_face_size",
        "must be >= 12 (found 8)",
    ),
    (
        "score above 1",
        ("min_score: 0.5", "min_score: 1.5"),
        19,
        "stores[0].cameras[0].visits.gate.min_score",
        "must be <= 1 (found 1.5)",
    ),
    (
        "negative yaw",
        ("min_score: 0.5", "max_yaw: -0.1"),
        19,
        "stores[0].cameras[0].visits.gate.max_yaw",
        "must be >= 0 (found -0.1)",
    ),
    (
        "gap zero",
        ("max_gap_seconds: 1.5", "max_gap_seconds: 0"),
        21,
        "stores[0].cameras[0].visits.tracker.max_gap_seconds",
        "greater than 0 (found 0)",
    ),
    (
        "too many votes",
        ("max_votes: 3", "max_votes: 100"),
        6,
        "pipeline.visits.max_votes",
        "must be <= 64 (found 100)",
    ),
    (
        "votes null on a camera",
        ("          tracker:\n", "          tracker:\n            min_frames: null\n"),
        21,
        "stores[0].cameras[0].visits.tracker.min_frames",
        "valid integer",
    ),
    (
        "unknown gate key",
        ("min_score: 0.5", "min_scor: 0.5"),
        19,
        "stores[0].cameras[0].visits.gate.min_scor",
        "unknown key 'min_scor'; allowed keys here: min_face_size, min_score",
    ),
    (
        "unknown visits key",
        ("max_votes: 3", "max_vote: 3"),
        6,
        "pipeline.visits.max_vote",
        "unknown key 'max_vote'; allowed keys here: gate, tracker, max_votes",
    ),
    (
        "reorder window empty",
        ("max_frames: 16", "max_frames: 0"),
        8,
        "pipeline.reorder.max_frames",
        "must be >= 1 (found 0)",
    ),
    (
        "idle flush too long",
        ("max_frames: 16", "idle_flush_seconds: 7200"),
        8,
        "pipeline.reorder.idle_flush_seconds",
        "must be <= 3600 (found 7200)",
    ),
    (
        "reorder on a camera",
        ("        fps: 5\n        visits:", "        fps: 5\n        reorder: {}\n        visits:"),
        17,
        "stores[0].cameras[0].reorder",
        "unknown key 'reorder'",
    ),
]


@pytest.mark.parametrize(
    ("base", "change", "line", "key", "words"),
    [(GOOD, *c[1:]) for c in BAD_CASES] + [(VISITS_YAML, *c[1:]) for c in BAD_VISIT_CASES],
    ids=[c[0] for c in (*BAD_CASES, *BAD_VISIT_CASES)],
)
def test_bad_registry_reports_file_line_and_key(
    tmp_path: Path, base: str, change: tuple[str, str], line: int, key: str, words: str
) -> None:
    text = base.replace(*change, 1)
    assert text != base, "the case changes nothing"
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        load_registry(path, ENV)
    match = [p for p in info.value.problems if p.key == key and p.line == line]
    assert match, f"no problem at line {line} key {key!r} in:\n{info.value}"
    assert words in match[0].message
    assert all(p.file == str(path) for p in info.value.problems)
    assert "p@ss" not in str(info.value)


def _alias_bomb(levels: int = 8, width: int = 10) -> str:
    """YAML whose aliases expand to width**levels values (the 'billion laughs' shape)."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


FILE_CASES = [
    ("not yaml at all", "version: [1\n stores: {", 2, "not valid YAML"),
    ("yaml but not a mapping", "just a sentence\n", 1, "not a stores.yaml"),
    ("empty file", "", 1, "not a stores.yaml"),
    ("binary", "\x00\x01\x02", None, "YAML"),
    ("alias bomb", None, None, "more than"),
    ("deep nesting", "version: " + "[" * 200 + "]" * 200 + "\n", None, "not a stores.yaml"),
]


@pytest.mark.parametrize(
    ("text", "line", "words"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_unparsable_files_report_their_line(
    tmp_path: Path, text: str | None, line: int | None, words: str
) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, text if text is not None else _alias_bomb()), ENV)
    (problem,) = info.value.problems
    assert words in problem.message
    if line is not None:
        assert problem.line == line


EXPANSION_CASES = {
    # case: (file text, environment, words of the one problem)
    "file over the size cap": ("version: 1\n" + "#" * MAX_FILE_CHARS + "\n", ENV, "larger than"),
    "long $ string reused through aliases": (
        reused_through_aliases("rtsp://${CAM_USER}@cam/" + "s" * 2000, levels=4),
        ENV,
        "expand (through aliases",
    ),
    "long variable substituted through aliases": (
        reused_through_aliases("${BIG}", levels=3),
        {"BIG": "x" * 100_000},
        "expand (through aliases",
    ),
}


@pytest.mark.parametrize(("text", "environ", "words"), EXPANSION_CASES.values(), ids=EXPANSION_CASES.keys())
def test_files_that_would_expand_past_the_caps_are_refused(
    tmp_path: Path, text: str, environ: dict[str, str], words: str
) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, text), environ)
    (problem,) = info.value.problems
    assert words in problem.message and problem.message.startswith("not a stores.yaml")
    assert "x" * 20 not in problem.message


def _no_permission(path: Path) -> Path:
    path.write_text(GOOD)
    path.chmod(0)
    return path


def _bad_utf8(path: Path) -> Path:
    path.write_bytes(b"version: 1\nstores: \xff\xfe\n")
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


UNREADABLE_CASES = [
    ("missing file", lambda p: p, "file not found"),
    ("no read permission", _no_permission, "cannot read the file"),
    ("not UTF-8 text", _bad_utf8, "cannot read the file"),
    ("a directory", _directory, "is a directory"),
]


@pytest.mark.parametrize(
    ("make", "words"), [c[1:] for c in UNREADABLE_CASES], ids=[c[0] for c in UNREADABLE_CASES]
)
def test_unreadable_files_name_the_file(tmp_path: Path, make: Callable[[Path], Path], words: str) -> None:
    path = make(tmp_path / "stores.yaml")
    if os.geteuid() == 0 and make is _no_permission:
        pytest.skip("root reads files without read permission")
    with pytest.raises(RegistryError) as info:
        load_registry(path, ENV)
    (problem,) = info.value.problems
    assert problem.file == str(path) and problem.line is None and words in problem.message


def test_several_problems_reported_at_once(tmp_path: Path) -> None:
    text = (
        GOOD.replace("fps: 2", "fps: 0")
        .replace("Asia/Ho_Chi_Minh", "Mars/Olympus")
        .replace("${CAM_PASS}", "${NOPE}")
    )
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, text), ENV)
    keys = {p.key for p in info.value.problems}
    assert {"stores[0].timezone", "stores[0].cameras[0].source"} <= keys
    assert len(info.value.problems) >= 2


def test_duplicate_ids_reported_together_with_other_problems(tmp_path: Path) -> None:
    store = GOOD.split("stores:\n", 1)[1]
    text = (GOOD + store).replace("Asia/Ho_Chi_Minh", "Mars/Olympus")
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, text), ENV)
    by_key = {p.key: p for p in info.value.problems}
    assert {"stores[0].timezone", "stores[1].timezone", "stores[1].id"} <= set(by_key)
    assert by_key["stores[1].id"].line == 17 and "duplicate store id" in by_key["stores[1].id"].message


def test_duplicate_store_id(tmp_path: Path) -> None:
    store = GOOD.split("stores:\n", 1)[1]
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, GOOD + store), ENV)
    (problem,) = info.value.problems
    assert problem.key == "stores[1].id" and problem.line == 17 and "duplicate store id" in problem.message


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), (" 15 m ", 900)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "60", "1.5m", "-5s", "5d", "m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_examples_validate() -> None:
    registry = load_registry(REPO / "examples" / "stores.yaml", {})
    assert len(list(registry.cameras())) >= 2
    rtsp = load_registry(REPO / "examples" / "stores-rtsp.yaml", ENV)
    assert all("p@ss" not in rtsp.redacted_source(c) for _, c in rtsp.cameras(enabled_only=False))


def test_json_schema_file_has_no_drift() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == registry_json_schema(), "run: python -m moodstream.schemas.registry --write"


@pytest.mark.parametrize("name", ["stores.yaml", "stores-rtsp.yaml"])
def test_examples_match_the_json_schema(name: str) -> None:
    data = YAML(typ="safe").load((REPO / "examples" / name).read_text())
    jsonschema.validate(data, registry_json_schema())


def test_json_schema_rejects_unknown_keys() -> None:
    data = YAML(typ="safe").load((REPO / "examples" / "stores.yaml").read_text())
    data["stores"][0]["cameras"][0]["fpss"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, registry_json_schema())


# --------------------------------------------------------------------------------------------- visits


def test_camera_visit_settings_override_single_keys_of_the_pipeline(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, VISITS_YAML), {})
    far = registry.visit_config("s1", "far")
    near = registry.visit_config("s1", "near")
    defaults = VisitConfig()
    # the camera's gate.min_score and tracker.max_gap_seconds; the pipeline's min_face_size and max_votes
    assert far.gate == GateConfig(min_face_size=24, min_score=0.5)
    assert far.tracker == TrackerConfig(max_gap_seconds=1.5, min_frames=defaults.tracker.min_frames)
    assert far.max_votes == near.max_votes == 3
    assert near.gate == GateConfig(min_face_size=24) and near.tracker == defaults.tracker
    assert registry.pipeline.reorder == ReorderConfig(max_frames=16)


def test_visit_settings_default_when_absent(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD), ENV)
    assert registry.visit_config("hn-trangtien", "entrance") == VisitConfig()
    assert registry.pipeline.reorder == ReorderConfig()
    with pytest.raises(UnknownCameraError, match="hn-trangtien/nope"):
        registry.visit_config("hn-trangtien", "nope")


def test_json_schema_knows_the_visit_settings() -> None:
    data = YAML(typ="safe").load(VISITS_YAML)
    jsonschema.validate(data, registry_json_schema())
    data["stores"][0]["cameras"][0]["visits"]["gate"]["min_face_size"] = 4
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, registry_json_schema())
