"""Dashboards as code: the generated JSON is what Grafana and the SDK's model accept, and is committed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("grafana_foundation_sdk", reason="install the grafana extra: pip install -e .[grafana]")

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from ruamel.yaml import YAML

from moodstream.runtime.dashboards.build import (
    CAMERA_HEALTH_UID,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    SATISFACTION_UID,
    build_dashboards,
    dashboard_json_text,
    register_sql_dataquery,
)
from moodstream.runtime.dashboards.macros import ALL_VALUE, VariableValue, expand

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deploy" / "grafana" / "dashboards"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"

DASHBOARDS = build_dashboards()


def _panels(uid: str) -> list[dict[str, Any]]:
    return list(DASHBOARDS[uid]["panels"])


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_committed_json_equals_a_fresh_export(uid: str) -> None:
    path = COMMITTED / f"{uid}.json"
    assert path.is_file(), f"{path} missing: run `moodstream grafana export`"
    assert path.read_text(encoding="utf-8") == dashboard_json_text(DASHBOARDS[uid]), (
        f"{path} drifted from moodstream/dashboards: run `moodstream grafana export`"
    )


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_sdk_model_parses_the_json_back_unchanged(uid: str) -> None:
    register_sql_dataquery()
    text = (COMMITTED / f"{uid}.json").read_text(encoding="utf-8")
    model = Dashboard.from_json(json.loads(text))
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == json.loads(text)


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_panel_ids_are_unique_and_panels_do_not_overlap(uid: str) -> None:
    panels = _panels(uid)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_target_is_raw_sql_on_the_provisioned_datasource(uid: str) -> None:
    for panel in _panels(uid):
        assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["rawQuery"] is True and target["format"] in ("time_series", "table")
            assert "applied_frames" not in target["rawSql"]


def test_satisfaction_dashboard_has_the_required_panels_and_variables() -> None:
    panels = _panels(SATISFACTION_UID)
    titles = {p["title"]: p for p in panels}
    visit_panels = {
        "Satisfaction per visit over time",
        "Visitors, satisfaction per visit and dwell",
        "Visitors per hour",
        "Dwell time of visits",
        "Emotion per visit over time",
        "Visits per emotion",
        "Stores ranked by satisfaction per visit",
    }
    assert visit_panels <= set(titles)
    # the headline is per visit, at the top left; every face-level panel says so and comes after the visits
    assert panels[0]["title"] == "Satisfaction per visit over time" and panels[0]["gridPos"]["y"] == 0
    face_panels = [p for p in panels if "face" in p["title"].lower()]
    assert face_panels and all(p["title"].startswith("Faces (secondary): ") for p in face_panels)
    lowest_visit_row = max(p["gridPos"]["y"] for p in panels if p["title"] in visit_panels)
    assert all(p["gridPos"]["y"] > lowest_visit_row for p in face_panels)
    headline_sql = titles["Satisfaction per visit over time"]["targets"][0]["rawSql"]
    assert "NULLIF(sum(readable_visits), 0)" in headline_sql
    assert "$__timeGroupAlias(bucket_start, $__interval)" in headline_sql
    mix = titles["Emotion per visit over time"]["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"]
    assert mix == "percent"
    assert titles["Visits per emotion"]["type"] == titles["Dwell time of visits"]["type"] == "barchart"
    assert titles["Stores ranked by satisfaction per visit"]["type"] == "table"
    variables = {
        v["name"]: v for v in DASHBOARDS[SATISFACTION_UID]["templating"]["list"] if v["type"] == "query"
    }
    assert list(variables) == ["branch", "store", "camera"]
    for v in variables.values():
        assert v["multi"] and v["includeAll"] and v["current"]["value"] == [ALL_VALUE]
    assert "$branch" in variables["store"]["query"] and "$store" in variables["camera"]["query"]


def test_camera_health_dashboard_covers_silence_and_losses() -> None:
    sqls = " ".join(t["rawSql"] for p in _panels(CAMERA_HEALTH_UID) for t in p["targets"])
    assert "$silent_minutes" in sqls and "frame_losses" in sqls and "last_frame_at" in sqls
    names = [v["name"] for v in DASHBOARDS[CAMERA_HEALTH_UID]["templating"]["list"]]
    assert names == ["branch", "store", "camera", "silent_minutes"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_query_expands_with_no_leftover_placeholder(uid: str) -> None:
    variables = {
        "branch": VariableValue(ALL_VALUE, True, True, ["hanoi"]),
        "store": VariableValue(["a"], True, True, ["a"]),
        "camera": VariableValue(["c"], True, True, ["c"]),
        "silent_minutes": VariableValue("15"),
        "min_visits": VariableValue("5"),
    }
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    queries = [t["rawSql"] for p in _panels(uid) for t in p["targets"]]
    queries += [v["query"] for v in DASHBOARDS[uid]["templating"]["list"] if v["type"] == "query"]
    for sql in queries:
        assert "$" not in expand(sql, variables, start, end, "5m"), sql


def test_datasource_provisioning_uses_reader_role_and_env_password() -> None:
    doc = YAML(typ="safe").load((PROVISIONING / "datasources" / "moodstream.yaml").read_text())
    (ds,) = doc["datasources"]
    assert (ds["uid"], ds["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    assert ds["user"] == "${MOODSTREAM_READER_USER}"
    assert ds["secureJsonData"] == {"password": "${MOODSTREAM_READER_PASSWORD}"}
    assert "password" not in ds.get("jsonData", {})


def test_dashboard_provider_loads_the_committed_folder() -> None:
    doc = YAML(typ="safe").load((PROVISIONING / "dashboards" / "moodstream.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/moodstream"


def test_export_command_writes_the_committed_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from moodstream.cli.app import build_app

    result = CliRunner().invoke(build_app(), ["grafana", "export", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{uid}.json" for uid in DASHBOARDS)
    for name in written:
        assert (tmp_path / "out" / name).read_bytes() == (COMMITTED / name).read_bytes()


def test_export_to_an_unwritable_place_is_one_clear_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from moodstream.cli.app import build_app

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(build_app(), ["grafana", "export", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "cannot write dashboards" in result.stderr and "Traceback" not in result.output
