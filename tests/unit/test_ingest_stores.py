"""`moodstream ingest --stores`: ingest sharded by store (one ingest process per set of stores, e.g. one
Kubernetes Deployment per shard). The selection keeps only the chosen stores' cameras; a typo or an empty
value stops the command with a message naming it, before any server is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from moodstream.cli.app import build_app
from moodstream.cli.pipeline import parse_store_ids
from moodstream.runtime.processes import (
    UnknownStoreError,
    check_stores,
    load_camera_specs,
    registry_cameras,
)
from moodstream.schemas.registry import load_registry

THREE_STORES = """\
version: 1
stores:
  - id: hn-1
    branch: hanoi
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - {id: door, source: rtsp://192.0.2.1/s, fps: 2}
      - {id: till, source: rtsp://192.0.2.2/s, fps: 2}
  - id: hn-2
    branch: hanoi
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - {id: door, source: rtsp://192.0.2.3/s, fps: 2}
  - id: sg-1
    branch: saigon
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - {id: door, source: rtsp://192.0.2.4/s, fps: 2}
      - {id: off, source: rtsp://192.0.2.5/s, fps: 2, enabled: false}
"""


@pytest.fixture
def stores_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "stores.yaml"
    path.write_text(THREE_STORES, encoding="utf-8")
    return path


def cameras_of(path: Path, stores: frozenset[str]) -> list[tuple[str, str]]:
    return [(spec.store_id, spec.camera_id) for spec in load_camera_specs(path, stores)]


def test_a_selection_keeps_only_its_stores_enabled_cameras(stores_yaml: Path) -> None:
    assert cameras_of(stores_yaml, frozenset({"hn-1"})) == [("hn-1", "door"), ("hn-1", "till")]
    assert cameras_of(stores_yaml, frozenset({"hn-2", "sg-1"})) == [("hn-2", "door"), ("sg-1", "door")]
    everything = cameras_of(stores_yaml, frozenset())
    assert everything == [("hn-1", "door"), ("hn-1", "till"), ("hn-2", "door"), ("sg-1", "door")]


def test_shards_that_partition_the_stores_read_every_camera_exactly_once(stores_yaml: Path) -> None:
    registry = load_registry(stores_yaml)
    shards = [frozenset({"hn-1"}), frozenset({"hn-2", "sg-1"})]
    read = [key for shard in shards for key in cameras_of(stores_yaml, shard)]
    assert sorted(read) == sorted((s.store_id, s.camera_id) for s in registry_cameras(registry))


def test_a_store_removed_from_the_file_is_no_longer_read(
    stores_yaml: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores_yaml.write_text(THREE_STORES.split("  - id: hn-2")[0], encoding="utf-8")  # only hn-1 left
    assert cameras_of(stores_yaml, frozenset({"hn-2"})) == []
    assert "hn-2" in caplog.text and "not read" in caplog.text


def test_check_stores_names_unknown_ids_and_the_known_ones(stores_yaml: Path) -> None:
    registry = load_registry(stores_yaml)
    check_stores(registry, frozenset({"hn-1", "sg-1"}))
    with pytest.raises(UnknownStoreError, match=r"hn-9, xx.*its stores: hn-1, hn-2, sg-1"):
        check_stores(registry, frozenset({"xx", "hn-1", "hn-9"}))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, ()),
        (["hn-1"], ("hn-1",)),
        (["hn-1,hn-2"], ("hn-1", "hn-2")),
        (["hn-1, hn-2,", "sg-1", "hn-1"], ("hn-1", "hn-2", "sg-1")),
    ],
)
def test_parse_store_ids(values: list[str] | None, expected: tuple[str, ...]) -> None:
    assert parse_store_ids(values) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stores", "hn-9"], "--stores: unknown store id(s) hn-9"),
        (["--stores", "hn-1,nope"], "unknown store id(s) nope: not in the registry"),
        (["--stores", ""], "--stores '' holds no store id"),
        (["--stores", " , "], "holds no store id"),
        (["--stores", "Bad Store"], "--stores: 'Bad Store' is not a store id (1-64 lowercase"),
    ],
)
def test_ingest_rejects_a_bad_selection_before_contacting_redis(
    stores_yaml: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("MOODSTREAM_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens: never reached
    result = CliRunner().invoke(build_app(), ["ingest", "-c", str(stores_yaml), *args])
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
