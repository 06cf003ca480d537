"""The deployment files: compose files valid against the Compose Specification's JSON Schema, and consistent.

No Docker engine runs here. The schema is the compose-spec project's ``compose-spec.json`` (Apache-2.0)
as vendored by the check-jsonschema package (``check_jsonschema/builtin_schemas/vendor``).
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml")
STAGES = ("ingest", "detector", "tracker", "classifier", "aggregator")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    pytest.importorskip(
        "check_jsonschema", reason="install the dev extra (check-jsonschema ships compose-spec.json)"
    )
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _load(name: str) -> dict[str, Any]:
    return dict(YAML(typ="safe").load((DEPLOY / name).read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yml")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_matches_the_compose_spec(validator: Draft202012Validator, name: str) -> None:
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(_load(name))]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "redis", "restart_policy"), "always"),  # unknown service key
        (("services", "grafana", "ports"), "3000:3000"),  # must be a list
        (("services", "redis", "image"), ["redis"]),  # must be a string
    ],
)
def test_schema_rejects_broken_files(
    validator: Draft202012Validator, compose: dict[str, Any], path: tuple[str, ...], value: object
) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validator.iter_errors(broken)), f"schema accepted {path}={value!r}"


def test_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "postgres", "migrate", "grafana", *STAGES} <= set(services)
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "redis/moodstream/entrypoint.sh" in redis_cmd  # ACL users
    for stage in STAGES:
        svc = services[stage]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert (
            "MOODSTREAM_REDIS_URL" in svc["environment"] and "MOODSTREAM_DATABASE_URL" in svc["environment"]
        )
    for scalable in ("detector", "classifier"):  # `--scale` needs no fixed name and no host port
        assert "container_name" not in services[scalable] and "ports" not in services[scalable]
    assert "db upgrade" in " ".join(services["migrate"]["command"])


def test_grafana_mounts_the_provisioning_and_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts == {
        "./grafana/provisioning": "/etc/grafana/provisioning",
        "./grafana/dashboards": "/var/lib/grafana/dashboards/moodstream",
    }
    for host in mounts:
        assert (DEPLOY / host).is_dir()
    provisioning = (DEPLOY / "grafana/provisioning/datasources/moodstream.yaml").read_text(encoding="utf-8")
    for var in re.findall(r"\$\{(\w+)\}", provisioning):
        assert var in grafana["environment"], f"Grafana needs {var} for its datasource provisioning"


def test_every_required_variable_is_in_env_example() -> None:
    text = "\n".join((DEPLOY / name).read_text(encoding="utf-8") for name in COMPOSE_FILES)
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used - defined == set()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, flags=re.MULTILINE), "no password may be committed"


def test_dockerfile_copies_what_exists_and_has_both_targets() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^FROM \S+ AS (\w+)", dockerfile, flags=re.MULTILINE) == [
        "gpu",
        "cpu",
    ]  # cpu = default
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        for src in sources.split():
            assert (REPO / src).exists(), f"Dockerfile copies missing {src}"
    assert "onnxruntime-gpu" in dockerfile and "USER 10001" in dockerfile
