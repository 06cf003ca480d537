"""The Grafana dashboards of moodstream, built with grafana-foundation-sdk (typed builders).

``build_dashboards()`` returns {uid: dashboard JSON dict}; ``export_dashboards(out_dir)`` writes them as
``<uid>.json`` (sorted keys, 2-space indent, so the committed files diff cleanly). Panels query the
PostgreSQL datasource provisioned with uid :data:`DATASOURCE_UID`, as the read-only role.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Self

from grafana_foundation_sdk.builders import barchart, dashboard, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from moodstream.runtime.dashboards import sql

DATASOURCE_TYPE: Final[str] = "grafana-postgresql-datasource"
"""Plugin id of Grafana's bundled PostgreSQL datasource (Grafana >= 10.3)."""
DATASOURCE_UID: Final[str] = "moodstream-postgres"
"""uid given to the datasource by provisioning and by ``moodstream grafana push``."""
SATISFACTION_UID: Final[str] = "moodstream-satisfaction"
CAMERA_HEALTH_UID: Final[str] = "moodstream-camera-health"
DEFAULT_SILENT_MINUTES: Final[str] = "15"
DEFAULT_MIN_VISITS: Final[int] = 0
"""Default of the hidden constant ``min_visits`` (0: no suppression); export with --min-visits N to set it."""

DATASOURCE: Final[dm.DataSourceRef] = dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL target of the PostgreSQL datasource (the SDK ships no builder for it)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: str) -> None:
        self.ref_id, self.raw_sql, self.fmt = ref_id, raw_sql, fmt

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it in dashboard JSON."""
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.raw_sql,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Parse a target written by :meth:`to_json`."""
        return cls(str(data["refId"]), str(data["rawSql"]), str(data.get("format", "table")))


class SqlTarget(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of :class:`SqlQuery` for ``Panel.with_target``; fmt is ``time_series`` or ``table``."""

    def __init__(self, raw_sql: str, fmt: str = "time_series", ref_id: str = "A") -> None:
        self._query = SqlQuery(ref_id, raw_sql, fmt)

    def build(self) -> cogvariants.Dataquery:
        """The built target."""
        return self._query


def register_sql_dataquery() -> None:
    """Teach the SDK's JSON parser our target type (for ``Dashboard.from_json``); idempotent."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json)
    )


def _query_variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .allow_custom_value(False)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _min_visits_constant(min_visits: int) -> dashboard.ConstantVariable:
    """Hidden constant: emotion panels leave out groups with fewer visits (viewers cannot change it)."""
    return (
        dashboard.ConstantVariable("min_visits")
        .label("Minimum visits per group shown")
        .description(
            "Groups (bucket, store) with fewer visits (people) show no emotion: privacy of small groups."
        )
        .value(str(min_visits))
    )


def _scope_variables() -> list[dashboard.QueryVariable]:
    return [
        _query_variable("branch", "Branch", sql.BRANCH_VARIABLE),
        _query_variable("store", "Store", sql.STORE_VARIABLE),
        _query_variable("camera", "Camera", sql.CAMERA_VARIABLE),
    ]


def _timeseries(panel_id: int, title: str, query: str, unit: str = "short") -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "time_series"))
        .interval("1m")
        .unit(unit)
        .span(12)
        .height(9)
    )


def _table(panel_id: int, title: str, query: str) -> table.Panel:
    return (
        table.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .span(12)
        .height(9)
    )


def satisfaction_dashboard(min_visits: int = DEFAULT_MIN_VISITS) -> dashboard.Dashboard:
    """*Customer satisfaction*: visits first (satisfaction per visit, visitors, dwell, emotion per visit,
    store ranking), then face-level panels (titled "Faces (secondary)").

    Groups with fewer than ``min_visits`` visits show no emotion in any panel.
    """
    builder = (
        dashboard.Dashboard("Customer satisfaction")
        .uid(SATISFACTION_UID)
        .tags(["moodstream"])
        .description(
            "Satisfaction per visit, visitors, dwell and emotion per visit per branch, store and camera; "
            "face-level counts below (moodstream)."
        )
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .variables([*_scope_variables(), _min_visits_constant(min_visits)])
    )
    for panel in _visit_panels():
        builder.with_panel(panel)
    for panel in _face_panels():
        builder.with_panel(panel)
    return builder


def _visit_panels() -> list[cogbuilder.Builder[dm.Panel]]:
    """The headline rows: satisfaction per visit, visitors, dwell, emotion per visit, store ranking."""
    return [
        _timeseries(1, "Satisfaction per visit over time", sql.VISIT_SATISFACTION_OVER_TIME)
        .description(
            "(happy - (angry + disgust + fear + sad)) / readable visits per store; each visit counts once, "
            "with the emotion of its readable faces; bucket width follows the range"
        )
        .min(-1)
        .max(1)
        .decimals(2)
        .span(16),
        _stat(2, "Visitors, satisfaction per visit and dwell", sql.VISITORS_AND_SATISFACTION)
        .description("visitors: visits started in the range; readable: with an emotion; dwell_mean: seconds")
        .override_by_name("satisfaction", [dm.DynamicConfigValue(id_val="decimals", value=3)])
        .override_by_name("dwell_mean", [dm.DynamicConfigValue(id_val="unit", value="s")]),
        _timeseries(3, "Visitors per hour", sql.VISITORS_PER_HOUR)
        .description("Visits that started in each hour, per store")
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .span(16),
        _barchart(4, "Dwell time of visits", sql.DWELL_HISTOGRAM, "dwell").description(
            "Visits per time from first to last sighting"
        ),
        _timeseries(5, "Emotion per visit over time", sql.VISIT_EMOTION_MIX_OVER_TIME, unit="percentunit")
        .stacking(_stacking(common.StackingMode.PERCENT))
        .fill_opacity(70)
        .line_width(0)
        .span(16),
        _barchart(6, "Visits per emotion", sql.VISIT_EMOTION_TOTALS, "emotion").description(
            "Readable visits per emotion over the range (the mean of each visit's readable faces)"
        ),
        _table(7, "Stores ranked by satisfaction per visit", sql.STORE_RANKING)
        .decimals(3)
        .override_by_name("dwell_mean", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .span(24),
    ]


def _face_panels() -> list[cogbuilder.Builder[dm.Panel]]:
    """Secondary rows: every classified face counted, so people who linger weigh more."""
    return [
        _timeseries(8, "Faces (secondary): satisfaction per face over time", sql.FACE_SATISFACTION_OVER_TIME)
        .description("The same index over classified faces; a person who lingers counts many times")
        .min(-1)
        .max(1)
        .decimals(2)
        .span(12),
        _barchart(
            9, "Faces (secondary): classified faces per emotion", sql.FACE_EMOTION_TOTALS, "emotion"
        ).span(6),
        _stat(10, "Faces (secondary): faces and frames analysed", sql.FACES_AND_FRAMES)
        .description("faces: detected; readable: passed the quality gate; classified: sent to the model")
        .override_by_name("satisfaction", [dm.DynamicConfigValue(id_val="decimals", value=3)])
        .span(6),
    ]


def _stat(panel_id: int, title: str, query: str) -> stat.Panel:
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .reduce_options(_reduce_all_fields())
        .span(8)
        .height(9)
    )


def _barchart(panel_id: int, title: str, query: str, x_field: str) -> barchart.Panel:
    return (
        barchart.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .x_field(x_field)
        .show_value(common.VisibilityMode.ALWAYS)
        .span(8)
        .height(9)
    )


def _reduce_all_fields() -> common_builders.ReduceDataOptions:
    """Stat reduce options that show every numeric field of the single row."""
    return common_builders.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/.*/")


def _stacking(mode: common.StackingMode) -> common_builders.StackingConfig:
    return common_builders.StackingConfig().mode(mode).group("A")


def camera_health_dashboard() -> dashboard.Dashboard:
    """*Camera health*: frames per camera, last frame seen, silent cameras, shed and dead frames."""
    silent = (
        dashboard.CustomVariable("silent_minutes")
        .label("Silent after (minutes)")
        .values("5,15,30,60,240")
        .current(dm.VariableOption(selected=True, text=DEFAULT_SILENT_MINUTES, value=DEFAULT_SILENT_MINUTES))
    )
    builder = (
        dashboard.Dashboard("Camera health")
        .uid(CAMERA_HEALTH_UID)
        .tags(["moodstream"])
        .description("Are the cameras sending frames? Frames analysed, silence and frames lost (moodstream).")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables([*_scope_variables(), silent])
    )
    builder.with_panel(_timeseries(1, "Frames analysed per camera", sql.FRAMES_PER_CAMERA).span(16))
    builder.with_panel(
        stat.Panel()
        .id(2)
        .title("Frames lost in range")
        .description("shed: dropped by the stream caps; dead: sent to the dead-letter stream")
        .datasource(DATASOURCE)
        .with_target(SqlTarget(sql.FRAME_LOSSES_TOTAL, "table"))
        .reduce_options(_reduce_all_fields())
        .span(8)
        .height(9)
    )
    builder.with_panel(
        _table(3, "Cameras silent longer than $silent_minutes min", sql.SILENT_CAMERAS).no_value(
            "every camera is sending frames"
        )
    )
    builder.with_panel(_table(4, "Last frame seen per camera", sql.LAST_FRAME_SEEN))
    builder.with_panel(
        _timeseries(5, "Frames shed and sent to dead letter", sql.FRAME_LOSSES_OVER_TIME).span(24)
    )
    return builder


DASHBOARDS: Final[dict[str, Callable[[int], dashboard.Dashboard]]] = {
    SATISFACTION_UID: satisfaction_dashboard,
    CAMERA_HEALTH_UID: lambda _min_visits: camera_health_dashboard(),
}
"""Dashboard uid -> builder function (argument: the min_visits suppression threshold)."""


def build_dashboards(min_visits: int = DEFAULT_MIN_VISITS) -> dict[str, dict[str, Any]]:
    """{uid: dashboard JSON (plain dicts/lists, as Grafana stores it)} for every dashboard."""
    out = {}
    for uid, make in DASHBOARDS.items():
        model = make(min_visits).build()
        out[uid] = json.loads(json.dumps(model, cls=JSONEncoder))
    return out


def dashboard_json_text(model: dict[str, Any]) -> str:
    """Canonical text of a dashboard file (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_dashboards(out_dir: Path, min_visits: int = DEFAULT_MIN_VISITS) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in build_dashboards(min_visits).items():
        path = out_dir / f"{uid}.json"
        path.write_text(dashboard_json_text(model), encoding="utf-8")
        written.append(path)
    return written
