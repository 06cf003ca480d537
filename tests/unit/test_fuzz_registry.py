"""Fuzzing the camera registry loader (``moodstream.schemas.registry.load_registry``) with hypothesis.

The promise: whatever stores.yaml holds (random bytes, random YAML documents, a valid registry with
fields mutated, hostile YAML such as alias bombs and self-references), loading it returns a Registry
or raises ``RegistryError`` (the project's own error type, whose problems name the file, line and
key), never another exception, never a hang.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from moodstream.schemas.registry import (
    MAX_EXPANDED_CHARS,
    MAX_FILE_CHARS,
    Registry,
    RegistryError,
    load_registry,
)
from tests.unit.helpers import VALID_REGISTRY_YAML as VALID
from tests.unit.helpers import reused_through_aliases

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ENV = {"CAM_USER": "u", "CAM_PASS": "p@ss:w%40rd"}


def load_or_registry_error(path: Path, environ: dict[str, str] | None = None) -> Registry | None:
    """The registry, or None after a RegistryError whose problems all have a message."""
    try:
        return load_registry(path, environ=ENV if environ is None else environ)
    except RegistryError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        assert all(p.file == str(path) for p in exc.problems)
        return None


def test_the_seed_registry_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(VALID)
    assert load_or_registry_error(path) is not None


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "stores.yaml"
    path.write_bytes(data)
    load_or_registry_error(path)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["${CAM_PASS}", "${UNSET}", "${X:-d}", "$${", "${", "60s", "0", "rtsp://h/s", "~"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _dump(tree: Any, path: Path) -> None:
    yaml = YAML(typ="safe")
    yaml.allow_unicode = True
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(tree, out)


@FUZZ
@given(tree=TREES)
def test_random_yaml_documents(tmp_path: Path, tree: Any) -> None:
    path = tmp_path / "stores.yaml"
    _dump(tree, path)
    load_or_registry_error(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


SEED = YAML(typ="safe").load(VALID)
SEED_PATHS = [p for p in _paths(SEED) if p]


@FUZZ
@given(data=st.data())
def test_valid_registry_with_fields_mutated(tmp_path: Path, data: st.DataObject) -> None:
    tree = YAML(typ="safe").load(VALID)
    for where in data.draw(st.lists(st.sampled_from(SEED_PATHS), min_size=1, max_size=3)):
        node = tree
        try:
            for part in where[:-1]:
                node = node[part]
            if data.draw(st.booleans()):
                node[where[-1]] = data.draw(TREES)
            elif isinstance(node, dict):
                node.pop(where[-1], None)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    path = tmp_path / "stores.yaml"
    _dump(tree, path)
    load_or_registry_error(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(environ=st.dictionaries(st.sampled_from(["CAM_USER", "CAM_PASS", "OTHER"]), st.text(max_size=40)))
def test_any_environment_values(tmp_path: Path, environ: dict[str, str]) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(VALID)
    load_or_registry_error(path, environ)


def _alias_bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x, x, x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join(f'*a{level - 1}' for _ in range(width))}]")
    lines.append(f"version: *a{levels - 1}")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias bomb": _alias_bomb(12, 9),
    "self-referencing alias": "version: 1\nstores: &s [*s]\n",
    "recursive mapping": "version: 1\nstores: &m {a: *m}\n",
    "deep nesting": "version: 1\nstores: " + "[" * 5000 + "]" * 5000 + "\n",
    "python object tag": "version: 1\nstores: !!python/object/apply:os.system ['true']\n",
    "binary source": "version: 1\nstores:\n  - id: s\n    branch: b\n    timezone: UTC\n    cameras:\n"
    "      - id: c\n        source: !!binary aGVsbG8=\n        fps: 1\n",
    "duplicate key": "version: 1\nversion: 1\nstores: []\n",
    "NUL in text": 'version: 1\nstores:\n  - id: "a\\0b"\n',
    "huge number": "version: 1\npipeline:\n  stream_maxlen: " + "9" * 5000 + "\nstores: []\n",
    "tab indentation": "version: 1\nstores:\n\t- id: s\n",
    "file over the size cap": "version: 1\nstores: []\n" + "#" * MAX_FILE_CHARS,
    "long $ string reused through aliases": reused_through_aliases("${CAM_USER}" + "s" * 4000, levels=4),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    levels=st.integers(1, 5),
    width=st.integers(1, 12),
    length=st.integers(0, 20_000),
    variable=st.booleans(),
)
def test_strings_reused_through_aliases_stay_within_the_expansion_cap(
    tmp_path: Path, levels: int, width: int, length: int, variable: bool
) -> None:
    """However a string is reused, loading ends in a RegistryError; past the cap it says so."""
    value = ("${CAM_USER}" if variable else "") + "s" * length
    path = tmp_path / "stores.yaml"
    path.write_text(reused_through_aliases(value, levels, width))
    with pytest.raises(RegistryError) as info:
        load_registry(path, environ=ENV)
    expanded = len(value) * width**levels
    if expanded > MAX_EXPANDED_CHARS:
        assert "expand" in str(info.value) or "more than" in str(info.value)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_yaml_is_a_registry_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError):
        load_registry(path, environ=ENV)
