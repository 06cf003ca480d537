"""The layering rule holds (README "Code map"): the runtime and the CLI use a stage package only through its
top level, and the import-linter contract passes here and fails when a stage imports another stage or the
runtime."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "moodstream"
NOT_STAGES = frozenset({"schemas", "common", "runtime", "cli"})
"""Subpackages of moodstream that are not stages (contracts, shared leaves, wiring, commands)."""


def stage_packages() -> list[str]:
    """Every stage package: the top-level folders linked into moodstream/ (ingest, detector, ...)."""
    return sorted(
        p.name for p in PACKAGE.iterdir() if p.is_symlink() and p.is_dir() and p.name not in NOT_STAGES
    )


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every module an AST imports; ``from a import b`` yields ``a`` and ``a.b``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _is_stage_submodule(name: str, stages: list[str]) -> bool:
    """True for ``moodstream.<stage>.<submodule>`` where the submodule is a file or folder of the stage."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "moodstream" or parts[1] not in stages:
        return False
    stage_dir = PACKAGE / parts[1]
    return (stage_dir / f"{parts[2]}.py").is_file() or (stage_dir / parts[2]).is_dir()


def test_stage_packages_are_found() -> None:
    assert {"ingest", "detector", "classifier", "aggregator"} <= set(stage_packages())


def test_runtime_and_cli_import_stages_only_through_their_top_level() -> None:
    stages = stage_packages()
    offences = []
    for folder in ("runtime", "cli"):
        for source in sorted((PACKAGE / folder).rglob("*.py")):
            tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
            offences += [
                f"{source.relative_to(REPO_ROOT)}:{line}: imports {name}"
                for line, name in _imported_modules(tree)
                if _is_stage_submodule(name, stages)
            ]
    assert not offences, (
        "the runtime and the CLI must import a stage package's public names from its top level "
        "(export them in the stage's __init__):\n" + "\n".join(offences)
    )


def test_every_stage_is_a_layer_of_the_import_contract() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layered = {
        name.strip().removeprefix("moodstream.")
        for contract in contracts
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.split("|")
    }
    missing = sorted(set(stage_packages()) - layered)
    assert not missing, f"stage packages missing from the import-linter layers in pyproject.toml: {missing}"


def _lint_imports() -> str:
    beside_python = str(Path(sys.executable).parent)
    found = shutil.which("lint-imports", path=beside_python) or shutil.which("lint-imports")
    if found is None:
        pytest.skip("lint-imports is not installed (pip install -e .[dev])")
    return found


def _run_lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with ``root``'s pyproject.toml, importing ``moodstream`` from ``root`` first."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contract_passes() -> None:
    result = _run_lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the Python sources of moodstream (symlinked stages resolved) and pyproject.toml."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        PACKAGE,
        root / "moodstream",
        symlinks=False,
        ignore=lambda _dir, names: [
            n for n in names if n == "__pycache__" or n.endswith((".onnx", ".json", ".yaml", ".sql"))
        ],
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("detector/_layer_probe.py", "from moodstream.classifier import EmotionClassifier\n"),
        ("ingest/_layer_probe.py", "from moodstream.runtime.worker import StreamWorker\n"),
        ("schemas/_layer_probe.py", "import moodstream.aggregator\n"),
        ("runtime/_layer_probe.py", "from moodstream.cli import app\n"),
    ],
    ids=["stage-imports-stage", "stage-imports-runtime", "contract-imports-stage", "runtime-imports-cli"],
)
def test_import_contract_fails_on_an_upward_or_sideways_import(
    package_copy: Path, module: str, source: str
) -> None:
    _lint_imports()
    probe = package_copy / "moodstream" / module
    probe.write_text(f'"""A deliberate layering violation."""\n\n{source}', encoding="utf-8")
    try:
        result = _run_lint_imports(package_copy)
    finally:
        probe.unlink()
    assert result.returncode != 0, f"lint-imports accepted {module}: {source}"
    assert "BROKEN" in result.stdout, result.stdout + result.stderr
    assert f"moodstream.{module.removesuffix('.py').replace('/', '.')}" in result.stdout, result.stdout
