"""`moodstream cameras validate|list`: exit codes, lines of mistakes, passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from moodstream.cli.app import build_app

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_accepts_the_example_without_any_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAM_USER", raising=False)
    monkeypatch.delenv("CAM_PASS", raising=False)
    code, out, _ = run("cameras", "validate", "-c", str(REPO / "examples" / "stores.yaml"))
    assert code == 0 and ": OK: 2 stores, 3 cameras" in out


GOOD = """\
version: 1
stores:
  - id: s1
    branch: b
    timezone: Europe/Paris
    cameras:
      - id: entrance
        source: rtsp://u:${MS_TEST_PASS}@192.0.2.1/s
        name: Door
        fps: 2
        loop: false
"""


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("fps: 2", "fps: 2\n        fpss: 3"), 11, "unknown key 'fpss'"),
        (GOOD + "      - id: entrance\n        source: 0\n        fps: 1\n", 12, "duplicate camera id"),
        (GOOD.replace("fps: 2", "fps: 0"), 10, "greater than 0"),
        (GOOD.replace("Europe/Paris", "Europe/Pariss"), 5, "unknown time zone"),
        (GOOD.replace("${MS_TEST_PASS}", "${MS_TEST_MISSING}"), 8, "MS_TEST_MISSING is not set"),
        ("][ not yaml {", 1, "not valid YAML"),
        (
            GOOD.replace(
                "loop: false", "loop: false\n        visits:\n          gate:\n            min_face_size: 4"
            ),
            14,
            "stores[0].cameras[0].visits.gate.min_face_size: must be >= 12 (found 4)",
        ),
    ],
    ids=[
        *("unknown key", "duplicate camera id", "fps 0", "bad time zone", "missing env var", "not YAML"),
        "gate face size",
    ],
)
def test_validate_rejects_with_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, words: str
) -> None:
    monkeypatch.setenv("MS_TEST_PASS", "Very-Secret-1")
    path = tmp_path / "stores.yaml"
    path.write_text(text)
    code, out, err = run("cameras", "validate", "-c", str(path))
    assert code == 1 and out == ""
    assert f"{path}:{line}:" in err and words in err
    assert "Traceback" not in err and "Very-Secret-1" not in err


def test_validate_unreadable_file(tmp_path: Path) -> None:
    code, _, err = run("cameras", "validate", "-c", str(tmp_path / "missing.yaml"))
    assert code == 1 and "missing.yaml: file not found" in err and "Traceback" not in err


def test_validate_warns_about_missing_video_files(tmp_path: Path) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(GOOD.replace("rtsp://u:${MS_TEST_PASS}@192.0.2.1/s", "clips/door.mp4"))
    code, _, err = run("cameras", "validate", "-c", str(path))
    assert code == 0 and "s1/entrance: video file" in err and "does not exist" in err


def test_list_shows_cameras_with_passwords_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MS_TEST_PASS", "Very-Secret-1")
    path = tmp_path / "stores.yaml"
    path.write_text(GOOD)
    code, out, _ = run("cameras", "list", "-c", str(path))
    assert code == 0
    assert "rtsp://u:***@192.0.2.1/s" in out and "Door" in out and "Very-Secret" not in out
