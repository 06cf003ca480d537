"""``pip install .`` puts only ``moodstream`` on the import path: the wheel built from this tree has one
top-level package, and it carries the migrations, the ONNX models and ``py.typed``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = (
    ".git",
    ".venv",
    "tests",
    "bench",
    "deploy",
    "examples",
    "runs",
    "build",
    "dist",
    ".moodstream",
)
"""Folders the wheel build does not need (copying them would only cost time)."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built (no network, no build isolation: about 10 s) from a copy of this tree."""
    root = tmp_path_factory.mktemp("dist")
    source = root / "src"
    shutil.copytree(
        REPO_ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(*NOT_SHIPPED, "__pycache__", "*.egg-info", ".*_cache"),
    )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*command, "--quiet", "-w", str(root / "out"), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("pip is not installed in this environment")
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (root / "out").glob("moodstream-*.whl")
    return zipfile.ZipFile(built)


def _names(wheel: zipfile.ZipFile) -> list[PurePosixPath]:
    return [PurePosixPath(name) for name in wheel.namelist()]


def test_moodstream_is_the_only_top_level_name(wheel: zipfile.ZipFile) -> None:
    tops = {path.parts[0] for path in _names(wheel)}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert tops - dist_info == {"moodstream"}
    top_level = next(name for name in wheel.namelist() if name.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["moodstream"]


def test_the_stage_packages_are_inside_the_namespace(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for stage in ("schemas", "ingest", "detector", "classifier", "aggregator", "common", "runtime", "cli"):
        assert f"moodstream/{stage}/__init__.py" in names, stage


def test_migrations_models_and_py_typed_are_shipped(wheel: zipfile.ZipFile) -> None:
    names = _names(wheel)
    assert PurePosixPath("moodstream/py.typed") in names
    migrations = [n for n in names if n.parts[:3] == ("moodstream", "schemas", "migrations")]
    assert any(n.name == "env.py" for n in migrations), migrations
    assert any(n.parent.name == "versions" and n.suffix == ".py" for n in migrations), migrations
    for stage in ("detector", "classifier"):
        models = [n for n in names if n.parts[:3] == ("moodstream", stage, "models") and n.suffix == ".onnx"]
        assert models, f"no ONNX model of the {stage} in the wheel"
