"""The Grafana dashboards of moodstream, built with grafana-foundation-sdk (typed builders).

``build_dashboards()`` returns {uid: dashboard JSON dict}; ``export_dashboards(out_dir)`` writes them as
``<uid>.json`` (sorted keys, 2-space indent, so the committed files diff cleanly). Panels query the
PostgreSQL datasource chosen by the ``datasource`` variable (default: the one provisioned with uid
:data:`DATASOURCE_UID`), as the read-only role. Every field says its unit, decimals and thresholds.
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
"""uid given to the datasource by provisioning and by ``moodstream grafana push`` (the default of the
dashboards' datasource variable; importing the JSON through Grafana's UI picks any PostgreSQL datasource)."""
DATASOURCE_VARIABLE: Final[str] = "datasource"
SATISFACTION_UID: Final[str] = "moodstream-satisfaction"
CAMERA_HEALTH_UID: Final[str] = "moodstream-camera-health"
SILENT_MINUTES_CHOICES: Final[tuple[int, ...]] = (5, 15, 30, 60, 240)
DEFAULT_SILENT_MINUTES: Final[str] = "15"

DATASOURCE: Final[dm.DataSourceRef] = dm.DataSourceRef(
    type_val=DATASOURCE_TYPE, uid=f"${{{DATASOURCE_VARIABLE}}}"
)
"""What every panel, target and query variable queries: the datasource the variable selects."""

Steps = tuple[tuple[float | None, str], ...]
"""Threshold steps (value, colour), the first value None (minus infinity)."""
NEUTRAL: Final[Steps] = ((None, "blue"),)
"""One colour whatever the value: counts and durations are neither good nor bad."""
SATISFACTION_STEPS: Final[Steps] = ((None, "red"), (0.0, "yellow"), (0.25, "green"))
"""Satisfaction index (-1..1): red below 0, yellow from 0, green from 0.25."""
LOSS_STEPS: Final[Steps] = ((None, "green"), (1.0, "red"))
"""Frames lost: green at 0, red from the first lost frame."""


def thresholds_json(steps: Steps) -> dict[str, Any]:
    """Grafana's ``thresholds`` field config for ``steps`` (absolute mode)."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def _thresholds(steps: Steps) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def field(
    unit: str | None = None,
    decimals: int | None = None,
    bounds: tuple[float, float] | None = None,
    steps: Steps | None = None,
) -> list[dm.DynamicConfigValue]:
    """Override properties of one field: unit, decimals, min/max and thresholds (each when given)."""
    out = []
    if unit is not None:
        out.append(dm.DynamicConfigValue(id_val="unit", value=unit))
    if decimals is not None:
        out.append(dm.DynamicConfigValue(id_val="decimals", value=decimals))
    if bounds is not None:
        out.append(dm.DynamicConfigValue(id_val="min", value=bounds[0]))
        out.append(dm.DynamicConfigValue(id_val="max", value=bounds[1]))
    if steps is not None:
        out.append(dm.DynamicConfigValue(id_val="thresholds", value=thresholds_json(steps)))
    return out


SATISFACTION_FIELD: Final[list[dm.DynamicConfigValue]] = field("none", 2, (-1, 1), SATISFACTION_STEPS)
COUNT_FIELD: Final[list[dm.DynamicConfigValue]] = field("none", 0)
SHARE_FIELD: Final[list[dm.DynamicConfigValue]] = field("percentunit", 1, (0, 1))
SECONDS_FIELD: Final[list[dm.DynamicConfigValue]] = field("s", 0)


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


def _datasource_variable() -> dashboard.DatasourceVariable:
    """The PostgreSQL datasource every panel queries (provisioned one by default; any when imported)."""
    return (
        dashboard.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Data source")
        .type(DATASOURCE_TYPE)
        .allow_custom_value(False)
        .current(dm.VariableOption(selected=True, text="moodstream PostgreSQL", value=DATASOURCE_UID))
    )


def _query_variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    """Multi-value query variable with "All" as :data:`sql.ALL_SQL`, refreshed when the dashboard loads."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(sql.ALL_SQL)
        .allow_custom_value(False)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _store_variables() -> list[cogbuilder.Builder[dm.VariableModel]]:
    return [
        _datasource_variable(),
        _query_variable("branch", "Branch", sql.BRANCH_VARIABLE),
        _query_variable("store", "Store", sql.STORE_VARIABLE),
    ]


def _timeseries(panel_id: int, title: str, query: str, unit: str = "none") -> timeseries.Panel:
    """Time series; ``interval`` (the least $__interval) is 1 h: the store views hold store-local hours."""
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "time_series"))
        .interval("1h")
        .unit(unit)
        .thresholds(_thresholds(NEUTRAL))
        .span(12)
        .height(9)
    )


def _table(panel_id: int, title: str, query: str) -> table.Panel:
    """Table whose fields are counts (unit none, 0 decimals) unless overridden field by field."""
    return (
        table.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .unit("none")
        .decimals(0)
        .thresholds(_thresholds(NEUTRAL))
        .span(24)
        .height(9)
    )


def _stat(panel_id: int, title: str, query: str, steps: Steps = NEUTRAL) -> stat.Panel:
    """Stat of every field of one row: counts (0 decimals) coloured by ``steps`` unless overridden."""
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .reduce_options(_reduce_all_fields())
        .unit("none")
        .decimals(0)
        .thresholds(_thresholds(steps))
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .graph_mode(common.BigValueGraphMode.NONE)
        .span(8)
        .height(9)
    )


def _barchart(panel_id: int, title: str, query: str, x_field: str) -> barchart.Panel:
    """Bar chart of counts over the range (0 decimals)."""
    return (
        barchart.Panel()
        .id(panel_id)
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTarget(query, "table"))
        .x_field(x_field)
        .show_value(common.VisibilityMode.ALWAYS)
        .unit("none")
        .decimals(0)
        .thresholds(_thresholds(NEUTRAL))
        .span(8)
        .height(9)
    )


def _reduce_all_fields() -> common_builders.ReduceDataOptions:
    """Stat reduce options that show every numeric field of the single row."""
    return common_builders.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/.*/")


def _stacking(mode: common.StackingMode) -> common_builders.StackingConfig:
    return common_builders.StackingConfig().mode(mode).group("A")


def satisfaction_dashboard() -> dashboard.Dashboard:
    """*Customer satisfaction*: visits first (satisfaction per visit, visitors, dwell, emotion per visit,
    store ranking, store-local days), then face-level panels (titled "Faces (secondary)").

    Every panel reads the store-local hours of ``store_hours(from, to)`` (rows of ``store_hourly_v``), where
    the database has already hidden the emotions of hours with fewer visits than its ``min_visits``.
    """
    builder = (
        dashboard.Dashboard("Customer satisfaction")
        .uid(SATISFACTION_UID)
        .tags(["moodstream"])
        .description(
            "Satisfaction per visit, visitors, dwell and emotion per visit per branch and store, in "
            "store-local hours and days; face-level counts below (moodstream)."
        )
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .variables(_store_variables())
    )
    for panel in _visit_panels():
        builder.with_panel(panel)
    for panel in _face_panels():
        builder.with_panel(panel)
    return builder


def _visit_panels() -> list[cogbuilder.Builder[dm.Panel]]:
    """The headline rows: satisfaction per visit, visitors, dwell, emotion per visit, store ranking, days."""
    return [
        _timeseries(
            1, "Satisfaction per visit per store (hourly or wider windows)", sql.VISIT_SATISFACTION_OVER_TIME
        )
        .description(
            "(happy - (angry + disgust + fear + sad)) / readable visits, per store (series keyed by store "
            "id); windows of one store-local hour, wider when zoomed out; hours below the privacy "
            "threshold show nothing"
        )
        .min(-1)
        .max(1)
        .decimals(2)
        .span(16),
        _stat(2, "Visitors, satisfaction per visit and dwell (whole range)", sql.VISITORS_AND_SATISFACTION)
        .description(
            "visitors: visits started in the range; readable: with an emotion shown; dwell_mean: mean "
            "visit length"
        )
        .override_by_name("satisfaction", SATISFACTION_FIELD)
        .override_by_name("dwell_mean", SECONDS_FIELD),
        _timeseries(3, "Visitors per store-local hour (sum per hour)", sql.VISITORS_PER_HOUR)
        .description("Visits that started in each hour of the store's own clock, per store id")
        .decimals(0)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .span(16),
        _barchart(
            4, "Dwell time of visits (visits over the range)", sql.DWELL_HISTOGRAM, "dwell"
        ).description("Visits per time from first to last sighting"),
        _timeseries(
            5,
            "Emotion mix of readable visits (share, hourly or wider windows)",
            sql.VISIT_EMOTION_MIX_OVER_TIME,
            "percentunit",
        )
        .description("Share of the readable visits of each window per emotion (they add up to 100%)")
        .min(0)
        .max(1)
        .decimals(0)
        .stacking(_stacking(common.StackingMode.NORMAL))
        .fill_opacity(70)
        .line_width(0),
        _barchart(
            6, "Visits per emotion (readable visits over the range)", sql.VISIT_EMOTION_TOTALS, "emotion"
        )
        .description("Readable visits per emotion over the range (the mean of each visit's readable faces)")
        .span(12),
        _table(7, "Stores ranked by satisfaction per visit (whole range)", sql.STORE_RANKING)
        .override_by_name("satisfaction", SATISFACTION_FIELD)
        .override_by_name("satisfaction_per_face", SATISFACTION_FIELD)
        .override_by_name("happy_share", SHARE_FIELD)
        .override_by_name("dwell_mean", SECONDS_FIELD),
        _table(8, "Daily trade per store (store-local days)", sql.DAILY_TRADE)
        .description("One row per store and day of the store's own calendar, as `moodstream report` counts")
        .override_by_name("satisfaction", SATISFACTION_FIELD)
        .override_by_name("happy_share", SHARE_FIELD)
        .override_by_name("dwell_mean", SECONDS_FIELD),
    ]


def _face_panels() -> list[cogbuilder.Builder[dm.Panel]]:
    """Secondary rows: every classified face counted, so people who linger weigh more."""
    return [
        _timeseries(
            9,
            "Faces (secondary): satisfaction per face per store (hourly or wider windows)",
            sql.FACE_SATISFACTION_OVER_TIME,
        )
        .description("The same index over classified faces; a person who lingers counts many times")
        .min(-1)
        .max(1)
        .decimals(2)
        .span(12),
        _barchart(
            10,
            "Faces (secondary): classified faces per emotion (over the range)",
            sql.FACE_EMOTION_TOTALS,
            "emotion",
        ).span(6),
        _stat(11, "Faces (secondary): faces and frames analysed (whole range)", sql.FACES_AND_FRAMES)
        .description("faces: detected; readable: passed the quality gate; classified: with an emotion shown")
        .override_by_name("satisfaction", SATISFACTION_FIELD)
        .span(6),
    ]


def _silent_minutes_variable() -> dashboard.CustomVariable:
    """A fixed choice of minutes (no custom value: the SQL casts it to an integer)."""
    return (
        dashboard.CustomVariable("silent_minutes")
        .label("Silent after (minutes)")
        .values(",".join(str(m) for m in SILENT_MINUTES_CHOICES))
        .multi(False)
        .include_all(False)
        .allow_custom_value(False)
        .current(dm.VariableOption(selected=True, text=DEFAULT_SILENT_MINUTES, value=DEFAULT_SILENT_MINUTES))
    )


def camera_health_dashboard() -> dashboard.Dashboard:
    """*Camera health*: frames per minute per camera, last frame seen, silent cameras, frames lost."""
    builder = (
        dashboard.Dashboard("Camera health")
        .uid(CAMERA_HEALTH_UID)
        .tags(["moodstream"])
        .description("Are the cameras sending frames? Frames analysed, silence and frames lost (moodstream).")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables(
            [
                *_store_variables(),
                _query_variable("camera", "Camera", sql.CAMERA_VARIABLE),
                _silent_minutes_variable(),
            ]
        )
    )
    builder.with_panel(
        _timeseries(1, "Frames analysed per camera (frames per minute)", sql.FRAMES_PER_CAMERA)
        .description("Per store/camera: frames of each window divided by its length, whatever the zoom")
        .interval("1m")
        .decimals(1)
        .span(16)
    )
    builder.with_panel(
        _stat(2, "Frames lost (whole range)", sql.FRAME_LOSSES_TOTAL, LOSS_STEPS).description(
            "shed: dropped by the stream caps; dead: sent to the dead-letter stream"
        )
    )
    builder.with_panel(
        _table(3, "Cameras silent longer than $silent_minutes min", sql.SILENT_CAMERAS)
        .no_value("every camera is sending frames")
        .override_by_name("silent_seconds", SECONDS_FIELD)
        .span(12)
    )
    builder.with_panel(
        _table(4, "Last frame seen per camera", sql.LAST_FRAME_SEEN)
        .override_by_name("silent_seconds", SECONDS_FIELD)
        .span(12)
    )
    builder.with_panel(
        _timeseries(5, "Frames shed and sent to dead letter (sum per hour)", sql.FRAME_LOSSES_OVER_TIME)
        .decimals(0)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .span(24)
    )
    return builder


DASHBOARDS: Final[dict[str, Callable[[], dashboard.Dashboard]]] = {
    SATISFACTION_UID: satisfaction_dashboard,
    CAMERA_HEALTH_UID: camera_health_dashboard,
}
"""Dashboard uid -> builder function."""


def build_dashboards() -> dict[str, dict[str, Any]]:
    """{uid: dashboard JSON (plain dicts/lists, as Grafana stores it)} for every dashboard."""
    out = {}
    for uid, make in DASHBOARDS.items():
        model = make().build()
        out[uid] = json.loads(json.dumps(model, cls=JSONEncoder))
    return out


def dashboard_json_text(model: dict[str, Any]) -> str:
    """Canonical text of a dashboard file (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_dashboards(out_dir: Path) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in build_dashboards().items():
        path = out_dir / f"{uid}.json"
        path.write_text(dashboard_json_text(model), encoding="utf-8")
        written.append(path)
    return written
