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
        assert svc["environment"]["MOODSTREAM_REDIS_URL"].startswith("redis://moodstream:")
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


# --- least privilege between the services (issue 13 item 12) ---------------------------------------------

DATABASE_USERS = {"migrate": "MOODSTREAM_WRITER_USER", "aggregator": "MOODSTREAM_WRITER_USER"}


def test_only_migrate_and_aggregator_get_a_database_url_and_as_the_writer(compose: dict[str, Any]) -> None:
    given = {
        name: svc["environment"]["MOODSTREAM_DATABASE_URL"]
        for name, svc in compose["services"].items()
        if "MOODSTREAM_DATABASE_URL" in svc.get("environment", {})
    }
    assert set(given) == set(DATABASE_USERS)
    for name, url in given.items():
        assert url.startswith(f"postgresql://${{{DATABASE_USERS[name]}:-moodstream_writer}}:"), name
        assert "MOODSTREAM_WRITER_PASSWORD" in url and "POSTGRES_" not in url.split("@")[0], name


def test_the_superuser_password_stays_in_the_postgres_service(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name == "postgres":
            continue
        text = json.dumps(svc)
        assert "POSTGRES_PASSWORD" not in text and "POSTGRES_USER" not in text, name
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["MOODSTREAM_READER_USER"] == "${MOODSTREAM_READER_USER:-moodstream_reader}"
    assert not any("WRITER" in key for key in grafana)


def test_camera_secrets_reach_ingest_only(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        secrets = {k: v for k, v in env.items() if k.startswith("CAM_")}
        if name == "ingest":
            assert secrets == {"CAM_USER": "${CAM_USER:-}", "CAM_PASS": "${CAM_PASS:-}"}
        else:
            assert set(secrets.values()) <= {""}, f"{name} gets a camera secret: {secrets}"


def _commands(svc: dict[str, Any]) -> list[str]:
    out = []
    for key in ("command", "entrypoint"):
        value = svc.get(key)
        out += [value] if isinstance(value, str) else list(value or [])
    out += [str(part) for part in svc.get("healthcheck", {}).get("test", [])]
    return out


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_no_password_on_a_command_line(name: str) -> None:
    for service, svc in _load(name)["services"].items():
        for part in _commands(svc):
            assert "--pass" not in part and " -a " not in part and part != "-p", (service, part)
            for secret in re.findall(r"\$\$\{?(\w*PASS\w*)", part):
                # a password variable may only be handed to a process through its environment
                assert re.search(rf"REDISCLI_AUTH=\"\$\${secret}\" ", part), (service, part)


def test_redis_healthcheck_passes_the_password_in_the_environment(compose: dict[str, Any]) -> None:
    redis_check = " ".join(compose["services"]["redis"]["healthcheck"]["test"])
    assert "REDISCLI_AUTH=" in redis_check and "--user moodstream" in redis_check


def test_postgres_creates_the_roles_on_first_start(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in postgres["volumes"] if v.startswith("./"))
    assert mounts == {
        "./postgres/roles.sql": "/etc/moodstream/roles.sql",
        "./postgres/initdb.sh": "/docker-entrypoint-initdb.d/10-moodstream-roles.sh",
    }
    script = (DEPLOY / "postgres" / "initdb.sh").read_text(encoding="utf-8")
    assert "/etc/moodstream/roles.sql" in script and "PASSWORD" not in script.split("psql", 1)[1]
    for var in ("MOODSTREAM_WRITER_PASSWORD", "MOODSTREAM_READER_PASSWORD"):
        assert var in postgres["environment"]
    assert compose["services"]["migrate"]["command"] == [
        "moodstream",
        "db",
        "upgrade",
        "-c",
        "/config/stores.yaml",
    ]
