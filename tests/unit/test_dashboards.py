"""Dashboards as code: the generated JSON is what Grafana and the SDK's model accept, and is committed."""

from __future__ import annotations

import json
import re
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
from moodstream.runtime.dashboards.sql import ALL_SQL

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


DATASOURCE_REF = {"type": DATASOURCE_TYPE, "uid": "${datasource}"}


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_target_is_raw_sql_on_the_datasource_variable(uid: str) -> None:
    for panel in _panels(uid):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF
            assert target["rawQuery"] is True and target["format"] in ("time_series", "table")
            for hidden in ("applied_frames", "emotion_counts", "branch_daily_v", "privacy_settings"):
                assert hidden not in target["rawSql"], (panel["title"], hidden)


# --- variables ---------------------------------------------------------------------------------------


def _variables(uid: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DASHBOARDS[uid]["templating"]["list"]}


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_datasource_variable_comes_first_and_defaults_to_the_provisioned_uid(uid: str) -> None:
    first = DASHBOARDS[uid]["templating"]["list"][0]
    assert (first["name"], first["type"], first["query"]) == ("datasource", "datasource", DATASOURCE_TYPE)
    assert first["current"]["value"] == DATASOURCE_UID and first["allowCustomValue"] is False
    assert DATASOURCE_UID not in json.dumps(DASHBOARDS[uid]["panels"]), "a panel names the uid itself"


EXPECTED_VARIABLES = {
    SATISFACTION_UID: ["datasource", "branch", "store"],
    CAMERA_HEALTH_UID: ["datasource", "branch", "store", "camera", "silent_minutes"],
}


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_query_variables_refresh_on_load_with_an_all_value(uid: str) -> None:
    variables = _variables(uid)
    assert list(variables) == EXPECTED_VARIABLES[uid]
    for v in variables.values():
        if v["type"] != "query":
            continue
        assert v["datasource"] == DATASOURCE_REF
        assert v["refresh"] == 1, f"{v['name']}: refresh on dashboard load, not on every time change"
        assert v["multi"] and v["includeAll"] and v["current"]["value"] == [ALL_VALUE]
        assert v["allValue"] == ALL_SQL and v["allowCustomValue"] is False
        assert v["sort"] == 1
    assert "${branch:sqlstring}" in variables["store"]["query"]


def test_camera_variable_values_are_store_qualified() -> None:
    camera = _variables(CAMERA_HEALTH_UID)["camera"]
    assert "c.store_id || '/' || c.id AS __value" in camera["query"]
    assert "${store:sqlstring}" in camera["query"] and "${branch:sqlstring}" in camera["query"]


def test_silent_minutes_is_a_fixed_choice_of_whole_minutes() -> None:
    silent = _variables(CAMERA_HEALTH_UID)["silent_minutes"]
    assert silent["type"] == "custom"
    assert (silent["allowCustomValue"], silent["multi"], silent["includeAll"]) == (False, False, False)
    assert [int(m) for m in silent["query"].split(",")] == [5, 15, 30, 60, 240]
    assert silent["current"]["value"] == "15"


_VARIABLE_USE = re.compile(r"\$\{?([a-z]\w*)(?::(\w+))?\}?")


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_variable_in_sql_is_quoted_by_sqlstring(uid: str) -> None:
    queries = [t["rawSql"] for p in _panels(uid) for t in p["targets"]]
    queries += [v["query"] for v in DASHBOARDS[uid]["templating"]["list"] if v["type"] == "query"]
    for sql in queries:
        uses = _VARIABLE_USE.findall(sql)
        assert all(fmt == "sqlstring" for _, fmt in uses), (uses, sql)
        assert " IN ($" not in sql and " IN (${" not in sql, "an empty selection would be IN ()"


# --- units, decimals, thresholds, field by field ----------------------------------------------------------

NEUTRAL = {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}
SATISFACTION = {
    "mode": "absolute",
    "steps": [
        {"color": "red", "value": None},
        {"color": "yellow", "value": 0.0},
        {"color": "green", "value": 0.25},
    ],
}
LOSSES = {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1.0}]}
SATISFACTION_FIELD = {"unit": "none", "decimals": 2, "min": -1, "max": 1, "thresholds": SATISFACTION}
COUNT = {"unit": "none", "decimals": 0, "thresholds": NEUTRAL}
SHARE = {"unit": "percentunit", "decimals": 1, "min": 0, "max": 1}
SECONDS = {"unit": "s", "decimals": 0}
INDEX_SERIES = {"unit": "none", "decimals": 2, "min": -1, "max": 1, "thresholds": NEUTRAL}

FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    # panel title -> {"defaults" or a field name: the field config Grafana applies to it}
    "Satisfaction per visit per store (hourly or wider windows)": {"defaults": INDEX_SERIES},
    "Visitors, satisfaction per visit and dwell (whole range)": {
        "defaults": COUNT,
        "satisfaction": SATISFACTION_FIELD,
        "dwell_mean": SECONDS,
    },
    "Visitors per store-local hour (sum per hour)": {"defaults": COUNT},
    "Dwell time of visits (visits over the range)": {"defaults": COUNT},
    "Emotion mix of readable visits (share, hourly or wider windows)": {
        "defaults": {"unit": "percentunit", "decimals": 0, "min": 0, "max": 1, "thresholds": NEUTRAL}
    },
    "Visits per emotion (readable visits over the range)": {"defaults": COUNT},
    "Stores ranked by satisfaction per visit (whole range)": {
        "defaults": COUNT,
        "satisfaction": SATISFACTION_FIELD,
        "satisfaction_per_face": SATISFACTION_FIELD,
        "happy_share": SHARE,
        "dwell_mean": SECONDS,
    },
    "Daily trade per store (store-local days)": {
        "defaults": COUNT,
        "satisfaction": SATISFACTION_FIELD,
        "happy_share": SHARE,
        "dwell_mean": SECONDS,
    },
    "Faces (secondary): satisfaction per face per store (hourly or wider windows)": {
        "defaults": INDEX_SERIES
    },
    "Faces (secondary): classified faces per emotion (over the range)": {"defaults": COUNT},
    "Faces (secondary): faces and frames analysed (whole range)": {
        "defaults": COUNT,
        "satisfaction": SATISFACTION_FIELD,
    },
    "Frames analysed per camera (frames per minute)": {
        "defaults": {"unit": "none", "decimals": 1, "thresholds": NEUTRAL}
    },
    "Frames lost (whole range)": {"defaults": {"unit": "none", "decimals": 0, "thresholds": LOSSES}},
    "Cameras silent longer than $silent_minutes min": {"defaults": COUNT, "silent_seconds": SECONDS},
    "Last frame seen per camera": {"defaults": COUNT, "silent_seconds": SECONDS},
    "Frames shed and sent to dead letter (sum per hour)": {"defaults": COUNT},
}
CONFIG_KEYS = ("unit", "decimals", "min", "max", "thresholds")


def _field_config(panel: dict[str, Any], name: str) -> dict[str, Any]:
    config = panel["fieldConfig"]
    if name == "defaults":
        return {k: v for k, v in config["defaults"].items() if k in CONFIG_KEYS}
    (override,) = [o for o in config["overrides"] if o["matcher"] == {"id": "byName", "options": name}]
    return {p["id"]: p["value"] for p in override["properties"]}


def test_every_panel_is_listed_with_its_fields() -> None:
    titles = [p["title"] for uid in sorted(DASHBOARDS) for p in _panels(uid)]
    assert sorted(titles) == sorted(FIELDS)


@pytest.mark.parametrize(("title", "name"), [(t, f) for t, fields in FIELDS.items() for f in fields])
def test_field_unit_decimals_and_thresholds(title: str, name: str) -> None:
    (panel,) = [p for uid in DASHBOARDS for p in _panels(uid) if p["title"] == title]
    assert _field_config(panel, name) == FIELDS[title][name]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_field_with_its_own_unit_has_its_own_override(uid: str) -> None:
    for panel in _panels(uid):
        overridden = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]}
        assert overridden == set(FIELDS[panel["title"]]) - {"defaults"}, panel["title"]
        if panel["type"] == "stat":
            assert panel["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}


def test_percentunit_only_on_shares_and_no_percent_stacking() -> None:
    for uid in DASHBOARDS:
        for panel in _panels(uid):
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            assert custom.get("stacking", {}).get("mode") != "percent", panel["title"]
            if panel["fieldConfig"]["defaults"].get("unit") == "percentunit":
                assert "::float8 / NULLIF(sum(readable_visits), 0)" in panel["targets"][0]["rawSql"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_counts_over_time_are_rates_or_fixed_windows_named_in_the_title(uid: str) -> None:
    for panel in _panels(uid):
        if panel["type"] != "timeseries":
            continue
        sql, title = panel["targets"][0]["rawSql"], panel["title"]
        if "$__interval" in sql:
            # windows follow the zoom: only ratios (shares, indices) or counts divided by the window length
            assert "/ NULLIF(" in sql or "/ GREATEST($__interval_ms" in sql, title
            assert "windows" in title or "per minute" in title, title
        else:
            assert "per hour" in title, title
        if "hourly or wider" in title:
            assert panel["interval"] == "1h", title


def test_satisfaction_series_are_keyed_by_store_id() -> None:
    for panel in _panels(SATISFACTION_UID):
        sql = panel["targets"][0]["rawSql"]
        if " AS metric" in sql:
            assert "store_id AS metric" in sql and "store_name AS metric" not in sql, panel["title"]


def test_day_and_hour_panels_use_store_local_time() -> None:
    titles = {p["title"]: p["targets"][0]["rawSql"] for p in _panels(SATISFACTION_UID)}
    daily = titles["Daily trade per store (store-local days)"]
    assert "GROUP BY local_day" in daily and "AT TIME ZONE timezone" in daily
    for title, sql in titles.items():  # every emotion is read through the suppressing hours
        assert "FROM store_hours($__timeFrom()" in sql, title


def test_satisfaction_dashboard_has_the_required_panels() -> None:
    panels = _panels(SATISFACTION_UID)
    titles = {p["title"]: p for p in panels}
    visit_panels = {t for t in titles if not t.startswith("Faces")}
    assert len(visit_panels) == 8
    # the headline is per visit, at the top left; every face-level panel says so and comes after the visits
    assert panels[0]["title"].startswith("Satisfaction per visit") and panels[0]["gridPos"]["y"] == 0
    face_panels = [p for p in panels if "face" in p["title"].lower()]
    assert face_panels and all(p["title"].startswith("Faces (secondary): ") for p in face_panels)
    lowest_visit_row = max(p["gridPos"]["y"] for p in panels if p["title"] in visit_panels)
    assert all(p["gridPos"]["y"] > lowest_visit_row for p in face_panels)
    assert "NULLIF(sum(readable_visits), 0)" in panels[0]["targets"][0]["rawSql"]
    assert titles["Visits per emotion (readable visits over the range)"]["type"] == "barchart"
    assert titles["Stores ranked by satisfaction per visit (whole range)"]["type"] == "table"


def test_camera_health_dashboard_covers_silence_and_losses() -> None:
    sqls = " ".join(t["rawSql"] for p in _panels(CAMERA_HEALTH_UID) for t in p["targets"])
    assert "CAST(${silent_minutes:sqlstring} AS integer)" in sqls
    assert "frame_losses" in sqls and "last_frame_at" in sqls


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_query_expands_with_no_leftover_placeholder(uid: str) -> None:
    variables = {
        "branch": VariableValue(ALL_VALUE, True, True, ["hanoi"], all_value=ALL_SQL),
        "store": VariableValue(["a"], True, True, ["a"], all_value=ALL_SQL),
        "camera": VariableValue([], True, True, [], all_value=ALL_SQL),  # a store without cameras
        "silent_minutes": VariableValue("15"),
    }
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    queries = [t["rawSql"] for p in _panels(uid) for t in p["targets"]]
    queries += [v["query"] for v in DASHBOARDS[uid]["templating"]["list"] if v["type"] == "query"]
    for sql in queries:
        expanded = expand(sql, variables, start, end, "5m")
        assert "$" not in expanded and "IN ()" not in expanded, expanded


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
