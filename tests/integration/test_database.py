"""Database access on real PostgreSQL: registry sync, unreachable servers, the `moodstream db` commands."""

from __future__ import annotations

import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from moodstream.cli.app import build_app
from moodstream.runtime.database import (
    DatabaseUnavailableError,
    create_database_engine,
    sync_registry,
)
from moodstream.schemas import tables
from moodstream.schemas.registry import load_registry
from tests.integration.helpers import head_revision

REGISTRY = """\
version: 1
stores:
  - id: hn
    name: Hanoi 1
    branch: hanoi
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - id: entrance
        source: rtsp://viewer:${CAM_PASS}@192.0.2.10/stream1
        fps: 2
      - id: counter
        source: videos/counter.mp4
        fps: 5
"""
ENTRANCE = (
    "      - id: entrance\n        source: rtsp://viewer:${CAM_PASS}@192.0.2.10/stream1\n        fps: 2\n"
)


def _registry(tmp_path: Path, text_: str) -> Path:
    path = tmp_path / "stores.yaml"
    path.write_text(textwrap.dedent(text_))
    return path


def _cameras(engine: Engine) -> dict[str, tuple[str, bool, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(tables.cameras)).all()
    return {f"{r.store_id}/{r.id}": (r.name, r.enabled, r.source_redacted) for r in rows}


def test_sync_adds_renames_disables_and_never_deletes(engine: Engine, tmp_path: Path) -> None:
    env = {"CAM_PASS": "s3cr3t-pw"}
    first = sync_registry(engine, load_registry(_registry(tmp_path, REGISTRY), env))
    assert sorted(first.added) == ["hn", "hn/counter", "hn/entrance"]
    cameras = _cameras(engine)
    assert cameras["hn/entrance"] == ("entrance", True, "rtsp://viewer:***@192.0.2.10/stream1")

    changed = REGISTRY.replace("id: counter", "id: counter\n        name: Till").replace(
        ENTRANCE,
        "",
    )
    second = sync_registry(engine, load_registry(_registry(tmp_path, changed), env))
    assert second.renamed == ["hn/counter"] and second.disabled == ["hn/entrance"] and not second.added
    cameras = _cameras(engine)
    assert cameras["hn/counter"][:2] == ("Till", True)
    assert cameras["hn/entrance"][1] is False  # kept, disabled

    third = sync_registry(engine, load_registry(_registry(tmp_path, REGISTRY), env))
    assert third.enabled == ["hn/entrance"] and third.renamed == ["hn/counter"]
    assert sync_registry(engine, load_registry(_registry(tmp_path, REGISTRY), env)).lines() == []


def test_removed_store_is_disabled_with_its_cameras(engine: Engine, tmp_path: Path) -> None:
    two_stores = REGISTRY + textwrap.indent(
        "- id: hcm\n  branch: saigon\n  timezone: Asia/Ho_Chi_Minh\n"
        "  cameras:\n    - {id: door, source: 0, fps: 1}\n",
        "  ",
    )
    env = {"CAM_PASS": "pw"}
    sync_registry(engine, load_registry(_registry(tmp_path, two_stores), env))
    report = sync_registry(engine, load_registry(_registry(tmp_path, REGISTRY), env))
    assert sorted(report.disabled) == ["hcm", "hcm/door"]
    with engine.connect() as conn:
        stores = {r.id: r.enabled for r in conn.execute(select(tables.stores))}
    assert stores == {"hn": True, "hcm": False}


def test_no_password_reaches_the_database(engine: Engine, tmp_path: Path) -> None:
    sync_registry(engine, load_registry(_registry(tmp_path, REGISTRY), {"CAM_PASS": "Sentinel@pw:%40"}))
    with engine.connect() as conn:
        dump = str(conn.execute(text("SELECT * FROM cameras")).all())
    assert "Sentinel" not in dump


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local TCP port that accepts connections (backlog) but never answers: a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_unreachable_database_gives_one_line_naming_host_within_bounded_time(silent_port: int) -> None:
    url = f"postgresql://writer:Hunter2-secret@127.0.0.1:{silent_port}/moodstream"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as info:
        create_database_engine(url, connect_timeout=2)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"127.0.0.1:{silent_port}/moodstream" in message
    assert "Hunter2" not in message and "\n" not in message
    assert elapsed < 20, f"gave up only after {elapsed:.1f}s with a 2s connect timeout"


def test_db_upgrade_command_on_unreachable_database(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", f"postgresql://w:Hunter2-secret@127.0.0.1:{silent_port}/db")
    monkeypatch.setenv("MOODSTREAM_CONNECT_TIMEOUT", "2")
    result = CliRunner().invoke(build_app(), ["db", "upgrade"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "Hunter2" not in result.output and "Traceback" not in result.output


def test_db_upgrade_command_twice_and_sync(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", database_url)
    monkeypatch.setenv("CAM_PASS", "pw-1234")
    app = build_app()
    first = CliRunner().invoke(app, ["db", "upgrade"])
    second = CliRunner().invoke(app, ["db", "upgrade", "-c", str(_registry(tmp_path, REGISTRY))])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert f"at revision {head_revision()}" in first.output and "added camera hn/entrance" in second.output
    engine = create_database_engine(database_url)
    assert set(_cameras(engine)) == {"hn/entrance", "hn/counter"}
    engine.dispose()


def test_db_create_reader_command(migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("MOODSTREAM_READER_ROLE", role)
    monkeypatch.setenv("MOODSTREAM_READER_PASSWORD", "Reader-Secret-1")
    engine = create_database_engine(migrated_database_url)
    try:
        result = CliRunner().invoke(build_app(), ["db", "create-reader"])
        assert result.exit_code == 0, result.output
        assert f"created read-only role {role}" in result.output and "Reader-Secret" not in result.output
        with engine.connect() as conn:
            can_login = conn.execute(text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role})
            assert can_login.scalar() is True
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        engine.dispose()
