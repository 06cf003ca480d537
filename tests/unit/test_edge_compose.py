"""Store-edge deployment files: both compose files valid against the Compose Specification, the store box
keeping images at the store (no PostgreSQL, results forwarded over TLS as the `edge` user), the center
running no model stage, the central ACL confining store boxes to the result keys, every variable in the
env examples with no password filled in."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

EDGE = Path(__file__).resolve().parents[2] / "deploy" / "edge"
FILES = {"docker-compose.store.yml": "store.env.example", "docker-compose.center.yml": "center.env.example"}


def _load(name: str) -> dict[str, Any]:
    return dict(YAML(typ="safe").load((EDGE / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(FILES))
def test_edge_compose_files_match_the_compose_spec(name: str) -> None:
    pytest.importorskip("check_jsonschema", reason="install the dev extra (it ships compose-spec.json)")
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    validator = Draft202012Validator(json.loads(schema_file.read_text(encoding="utf-8")))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(_load(name))]
    assert errors == []


def test_a_store_box_runs_the_model_stages_and_forwards_only_results() -> None:
    services = _load("docker-compose.store.yml")["services"]
    assert set(services) == {"redis", "ingest", "detector", "tracker", "classifier", "forwarder"}
    forwarder = services["forwarder"]
    assert forwarder["command"][:2] == ["moodstream", "forward"]
    central = forwarder["environment"]["MOODSTREAM_CENTRAL_REDIS_URL"]
    assert central.startswith("rediss://edge:") and "ssl_cert_reqs=required" in central
    for name, service in services.items():
        assert "MOODSTREAM_DATABASE_URL" not in service.get("environment", {}), name
        assert "ports" not in service, f"{name}: nothing on a store box listens outside it"


def test_the_center_runs_no_model_stage_and_publishes_redis_over_tls_only() -> None:
    services = _load("docker-compose.center.yml")["services"]
    assert {"ingest", "detector", "tracker", "classifier"}.isdisjoint(services)
    assert {"redis", "postgres", "migrate", "aggregator", "grafana"} <= set(services)
    command = services["redis"]["command"]
    assert command[command.index("--port") + 1] == "0"  # no plain-text port
    assert command[command.index("--tls-port") + 1] == "6380"
    assert services["redis"]["environment"]["MOODSTREAM_ACL_RULES"] == "/etc/redis/edge/center.acl"


def test_store_boxes_may_only_add_results_on_the_central_redis() -> None:
    rules = {
        line.split()[1]: line.split()
        for line in (EDGE / "center.acl").read_text(encoding="utf-8").splitlines()
        if line.startswith("user ")
    }
    edge = rules["edge"]
    keys = {w for w in edge if w.startswith("~")}
    assert keys == {"~moodstream:emotions", "~moodstream:dead", "~moodstream:edge:last_forward"}
    commands = {w for w in edge if w.startswith("+")}
    assert {"+xadd", "+hset", "+multi", "+exec"} <= commands
    for refused in ("+xrange", "+xreadgroup", "+xdel", "+del", "+hgetall", "+@all", "+xtrim"):
        assert refused not in commands
    assert "-@all" in edge and "resetkeys" in edge


@pytest.mark.parametrize(("compose", "example"), sorted(FILES.items()))
def test_every_variable_is_in_the_env_example_and_no_password_is_filled_in(
    compose: str, example: str
) -> None:
    used = set(re.findall(r"\$\{(\w+)", (EDGE / compose).read_text(encoding="utf-8")))
    text = (EDGE / example).read_text(encoding="utf-8")
    defined = dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.MULTILINE))
    assert used - set(defined) == set()
    assert all(value == "" for name, value in defined.items() if name.endswith("PASSWORD"))
