"""One configuration tree, each default stated once: no knob has two defaults across the packages' config
models, and run options built from a registry carry the registry's values (validated)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import textwrap
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

import moodstream
from moodstream.runtime.models import AnalysisConfig
from moodstream.runtime.processes import RunOptions, options_from_registry
from moodstream.runtime.worker import WorkerConfig
from moodstream.schemas.registry import Registry, load_registry, parse_duration
from tests.unit.helpers import VALID_REGISTRY_YAML

OPTIONAL_EXTRAS = frozenset({"torch", "onnx", "keras", "h5py", "grafana_client", "grafana_foundation_sdk"})
"""Modules of the optional extras; a config module that needs one is skipped when it is not installed."""

SAME_KNOB: dict[tuple[str, str], tuple[str, Callable[[object], object]]] = {
    ("IngestConfig", "frames_maxlen"): ("stream_maxlen", lambda v: v),
    ("WorkerConfig", "output_maxlen"): ("stream_maxlen", lambda v: v),
    ("WorkerConfig", "claim_idle_ms"): ("reclaim_idle_seconds", lambda v: float(str(v)) / 1000),
    ("PipelineConfig", "reclaim_idle"): ("reclaim_idle_seconds", lambda v: float(parse_duration(str(v)))),
    ("PipelineConfig", "bucket"): ("bucket_seconds", lambda v: parse_duration(str(v))),
    ("Settings", "stream_prefix"): ("prefix", lambda v: v),
    # a different knob under a shared name: the smallest face that may vote for its visit's emotion, not the
    # smallest face the detector searches for (DetectorConfig.min_face_size)
    ("GateConfig", "min_face_size"): ("vote_min_face_size", lambda v: v),
}
"""Fields whose knob is not their name: the same knob under another name or unit, or another knob under a
shared name. (model, field) -> (knob, value in the knob's unit)."""

DIFFERENT_ON_PURPOSE: dict[str, str] = {
    "batch_size": "three knobs sharing a word: WorkerConfig reads stream entries per XREADGROUP, "
    "ClassifierConfig sends crops per ONNX Runtime run, TrainConfig takes images per training step",
    "intra_op_threads": "AnalysisConfig is the pipeline's (one thread per model process, the pipeline "
    "scales by processes); DetectorConfig and ClassifierConfig are a lone model object's (0: ONNX Runtime "
    "uses every core)",
    "crop_margin": "AnalysisConfig's None means 'the model's own', which is the manifest's InputSpec value "
    "(absent from a manifest: 0, the template framing)",
}
"""Knob names whose defaults legitimately differ between models, with the reason."""


def config_models() -> list[type[BaseModel]]:
    """Every pydantic model defined in the moodstream packages (stage folders included)."""
    found: set[type[BaseModel]] = set()
    for info in pkgutil.walk_packages(moodstream.__path__, "moodstream."):
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in OPTIONAL_EXTRAS:
                continue
            raise
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def knob_defaults() -> dict[str, dict[str, object]]:
    """knob -> {model.field: default in the knob's unit}, for every field that has a plain default."""
    knobs: dict[str, dict[str, object]] = defaultdict(dict)
    for cls in config_models():
        for name, field in cls.model_fields.items():
            if field.default is PydanticUndefined:
                continue
            knob, convert = SAME_KNOB.get((cls.__name__, name), (name, lambda v: v))
            knobs[knob][f"{cls.__module__}.{cls.__qualname__}.{name}"] = convert(field.default)
    return knobs


def test_the_walk_finds_the_stage_and_runtime_configs() -> None:
    names = {cls.__name__ for cls in config_models()}
    expected = {"IngestConfig", "DetectorConfig", "ClassifierConfig", "WorkerConfig", "AnalysisConfig"}
    assert expected | {"RunOptions", "PipelineConfig", "Settings"} <= names


def test_no_knob_has_two_defaults() -> None:
    conflicts = {
        knob: defaults
        for knob, defaults in knob_defaults().items()
        if len({repr(v) for v in defaults.values()}) > 1 and knob not in DIFFERENT_ON_PURPOSE
    }
    assert not conflicts, "the same knob has different defaults (state it once): " + "; ".join(
        f"{knob}: {defaults}" for knob, defaults in conflicts.items()
    )


def test_knobs_listed_as_different_still_differ() -> None:
    knobs = knob_defaults()
    stale = [k for k in DIFFERENT_ON_PURPOSE if len({repr(v) for v in knobs.get(k, {}).values()}) < 2]
    assert not stale, f"no longer different, remove from DIFFERENT_ON_PURPOSE: {stale}"


PIPELINE = """\
version: 1
pipeline:
  bucket: 5m
  stream_maxlen: 777
  max_deliveries: 9
  reclaim_idle: 2m
  jpeg_quality: 70
stores:
  - id: s1
    name: S1
    branch: b1
    timezone: UTC
    cameras:
      - id: cam
        source: rtsp://viewer:${CAM_PASS}@192.0.2.10/stream1
        fps: 2
"""


def _registry(tmp_path: Path, text: str) -> Registry:
    path = tmp_path / "stores.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_registry(path, {"CAM_PASS": "hunter22", "CAM_USER": "viewer"})


def _base() -> RunOptions:
    return RunOptions(
        redis_url="redis://localhost:6379/0",
        prefix="test:",
        log_level="INFO",
        analysis=AnalysisConfig(model="default", intra_op_threads=3),
        worker=WorkerConfig(batch_size=12, block_ms=250),
        secrets=("from-the-environment",),
    )


def test_options_built_from_a_registry_carry_its_values(tmp_path: Path) -> None:
    options = options_from_registry(_registry(tmp_path, PIPELINE), _base())
    assert options.bucket_seconds == 300
    assert (options.ingest.frames_maxlen, options.worker.output_maxlen) == (777, 777)
    assert options.worker.max_deliveries == 9
    assert options.worker.claim_idle_ms == 120_000
    assert options.ingest.jpeg_quality == 70
    # the command line's knobs stay, and the registry's secrets join the environment's
    assert (options.worker.batch_size, options.worker.block_ms) == (12, 250)
    assert options.analysis.intra_op_threads == 3
    assert set(options.secrets) == {"from-the-environment", "hunter22"}


def test_an_empty_pipeline_section_changes_nothing(tmp_path: Path) -> None:
    """A stage run without a registry has the same knobs as one run with an empty ``pipeline:``."""
    text = VALID_REGISTRY_YAML.replace("pipeline:\n  bucket: 60s\n", "")
    assert "pipeline" not in text
    base = _base()
    options = options_from_registry(_registry(tmp_path, text), base)
    assert options.model_dump(exclude={"secrets"}) == base.model_dump(exclude={"secrets"})


def test_updated_options_are_validated() -> None:
    options = _base()
    assert options.updated({"metrics_port": 9100}).metrics_port == 9100
    with pytest.raises(ValidationError, match="metrics_port"):
        options.updated({"metrics_port": -1})
    with pytest.raises(ValidationError, match="log_level"):
        options.updated({"log_level": "LOUD"})
