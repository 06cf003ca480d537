"""The committed alert rules: a Grafana rule and a Prometheus rule for each signal, with sane thresholds
that agree with the words beside them. (The SQL runs against PostgreSQL in
tests/integration/test_alert_sql.py; the metric names are checked against running stages in
tests/integration/test_health_endpoints.py.)"""

from __future__ import annotations

import re

import pytest

from tests.alert_rules import (
    GRAFANA_ALERTS,
    GRAFANA_DATASOURCES,
    PROMETHEUS_RULES,
    SIGNALS,
    grafana_rules,
    load_yaml,
)

DURATION = re.compile(r"^(\d+)(s|m|h)$")

SANE: dict[str, tuple[str, float, float]] = {
    "camera-silent": ("gt", 300, 3600),  # seconds silent: 5 minutes to an hour
    "pipeline-lag": ("gt", 30, 900),  # seconds from capture to commit
    "frames-lost": ("gt", 0, 100),  # frames in the window
    "satisfaction-drop": ("lt", -0.8, -0.1),  # change of an index in [-1, 1]
}


def seconds(text: str) -> int:
    match = DURATION.match(text)
    assert match, f"not a duration: {text!r}"
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def test_file_is_grafana_alerting_provisioning_on_the_provisioned_datasource() -> None:
    document = load_yaml(GRAFANA_ALERTS)
    assert document["apiVersion"] == 1
    (datasource,) = load_yaml(GRAFANA_DATASOURCES)["datasources"]
    for group in document["groups"]:
        assert group["orgId"] == 1 and group["folder"] == "moodstream" and seconds(group["interval"]) >= 60
        for rule in group["rules"]:
            refs = {d["refId"]: d for d in rule["data"]}
            assert rule["condition"] in refs and set(refs) == {"A", "C"}
            assert refs["A"]["datasourceUid"] == datasource["uid"]
            assert refs["A"]["model"]["format"] == "table" and refs["A"]["relativeTimeRange"]["to"] == 0
            assert refs["C"]["datasourceUid"] == "__expr__"
            assert refs["C"]["model"] == {**refs["C"]["model"], "type": "threshold", "expression": "A"}
            assert rule["noDataState"] == "OK" and rule["execErrState"] == "Error"
            assert "$__" not in refs["A"]["model"]["rawSql"], "alert SQL must not depend on panel macros"
            assert rule["annotations"]["summary"] and rule["labels"]["team"] == "moodstream"
            # Grafana expands $VARIABLES from its environment in titles and labels (annotations and models
            # are read raw): none may hold a `$`
            assert "$" not in rule["title"] + "".join(rule["labels"].values()) + rule["uid"]


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_each_signal_has_a_grafana_rule_with_a_sane_threshold(signal: str) -> None:
    rule = grafana_rules()[SIGNALS[signal]]
    operator, low, high = SANE[signal]
    assert rule.raw["labels"]["signal"] == signal
    assert rule.operator == operator and low <= rule.threshold <= high
    assert 0 <= seconds(rule.raw["for"]) <= 3600


def test_silent_camera_threshold_matches_the_opening_hours_window() -> None:
    rule = grafana_rules()[SIGNALS["camera-silent"]]
    (minutes,) = re.findall(r"now\(\) - interval '(\d+) minutes'", rule.sql)
    assert int(minutes) * 60 == rule.threshold  # open for as long as the camera must have been silent
    assert "open_now" in rule.sql and "store_is_open" in rule.sql


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_each_signal_has_a_prometheus_alert(signal: str) -> None:
    groups = load_yaml(PROMETHEUS_RULES)["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    mine = [r for r in alerts if r["labels"]["signal"] == signal]
    assert mine, f"no Prometheus alert for {signal}"
    for rule in mine:
        assert re.match(r"^Moodstream[A-Z]\w+$", rule["alert"]) and rule["annotations"]["summary"]
        assert 0 <= seconds(rule["for"]) <= 3600
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    used = {n for r in alerts for n in re.findall(r"moodstream:[\w:]+", r["expr"])}
    assert used <= records, f"alerts use recording rules that do not exist: {used - records}"


def test_prometheus_silent_camera_rule_is_bound_to_opening_hours() -> None:
    groups = load_yaml(PROMETHEUS_RULES)["groups"]
    (silent,) = [r for g in groups for r in g["rules"] if r.get("alert") == "MoodstreamCameraSilent"]
    assert "moodstream_camera_open == 1" in silent["expr"] and "> 900" in silent["expr"]


def test_prometheus_expressions_are_well_formed_without_a_promql_parser() -> None:
    """No promtool here: brackets balance, ranges are durations, label matchers are quoted."""
    for group in load_yaml(PROMETHEUS_RULES)["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            depth = {"(": 0, "[": 0, "{": 0}
            closing = {")": "(", "]": "[", "}": "{"}
            for char in re.sub(r'"[^"]*"', '""', expr):
                if char in depth:
                    depth[char] += 1
                elif char in closing:
                    depth[closing[char]] -= 1
                    assert depth[closing[char]] >= 0, f"unbalanced {char} in {expr}"
            assert depth == {"(": 0, "[": 0, "{": 0}, f"unbalanced brackets in {expr}"
            for window in re.findall(r"\[([^\]]*)\]", expr):
                assert re.fullmatch(r"\d+[smhd]", window), f"bad range [{window}] in {expr}"
            for matcher in re.findall(r"\{([^}]*)\}", expr):
                assert re.fullmatch(r'(\w+(=|!=|=~|!~)"[^"]*",?\s*)+', matcher), f"bad matcher {{{matcher}}}"
