"""Reading the committed alert rule files (Grafana provisioning and Prometheus rules) for the tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML

REPO: Final = Path(__file__).resolve().parents[1]
GRAFANA_ALERTS: Final = REPO / "deploy/grafana/provisioning/alerting/moodstream-alerts.yaml"
GRAFANA_DATASOURCES: Final = REPO / "deploy/grafana/provisioning/datasources/moodstream.yaml"
PROMETHEUS_RULES: Final = REPO / "deploy/prometheus/moodstream-rules.yml"

SIGNALS: Final[dict[str, str]] = {
    "camera-silent": "moodstream-camera-silent",
    "pipeline-lag": "moodstream-pipeline-lag",
    "frames-lost": "moodstream-frames-lost",
    "satisfaction-drop": "moodstream-satisfaction-drop",
}
"""The signals issue 14 asks for, and the uid of the Grafana rule for each."""


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class GrafanaRule:
    """One provisioned rule: its raw definition, its SQL (refId A) and its threshold (refId C)."""

    raw: dict[str, Any]
    sql: str
    operator: str
    threshold: float

    def fires(self, value: float) -> bool:
        """Whether the threshold expression is true for ``value``."""
        return value > self.threshold if self.operator == "gt" else value < self.threshold


def grafana_rules() -> dict[str, GrafanaRule]:
    """Every rule of the provisioning file by uid."""
    out: dict[str, GrafanaRule] = {}
    for group in load_yaml(GRAFANA_ALERTS)["groups"]:
        for rule in group["rules"]:
            data = {d["refId"]: d for d in rule["data"]}
            (condition,) = data[rule["condition"]]["model"]["conditions"]
            evaluator = condition["evaluator"]
            out[rule["uid"]] = GrafanaRule(
                rule, data["A"]["model"]["rawSql"], evaluator["type"], float(evaluator["params"][0])
            )
    return out


def prometheus_metric_names() -> set[str]:
    """Metric names (not recording-rule names, which hold a ``:``) used by the Prometheus rule expressions."""
    names: set[str] = set()
    for group in load_yaml(PROMETHEUS_RULES)["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"(?<![\w:])moodstream_[a-z0-9_]+", rule["expr"]))
    return names


def exported_names(exposition: str) -> set[str]:
    """Sample names a Prometheus text exposition declares: each ``# TYPE`` family, as written and with the
    suffixes of its type (counter: ``_total``, ``_created``; histogram: ``_bucket``, ``_sum``, ``_count``,
    ...; the family of a counter may already be written with ``_total``)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created", ""),
        "gauge": ("",),
    }
    names: set[str] = set()
    for match in re.finditer(r"^# TYPE (\S+) (\w+)$", exposition, re.MULTILINE):
        family, kind = match.groups()
        base = family.removesuffix("_total") if kind == "counter" else family
        names |= {family} | {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names
