"""SQL of the dashboards' panels and variables, written for Grafana's PostgreSQL datasource.

Grafana first replaces template variables, then the datasource expands its macros (``$__timeFilter``,
``$__timeGroupAlias``, ``$__timeTo``). Every variable is written ``${name:sqlstring}`` (each value a quoted
SQL literal, ``'`` doubled) inside ``ARRAY[...]::text[]`` (so an empty selection is an empty array, never
``IN ()``), or cast from such a literal (``CAST(${silent_minutes:sqlstring} AS integer)``): no value a
viewer can put in a URL reaches PostgreSQL as SQL. "All" is the custom value :data:`ALL_SQL` (Grafana
inserts a custom all value as it is), which each filter reads as "no filter".

Every query reads only what the read-only role is granted: ``stores``, ``cameras``, ``frame_losses``,
``camera_activity_v`` (no emotion) and ``store_hours(from, to)`` (rows of ``store_hourly_v``), whose emotion
columns are NULL for store-local hours with fewer visits than the database's ``privacy_settings.min_visits``.
"""

from __future__ import annotations

from typing import Final

from moodstream.schemas.labels import EMOTIONS, NEGATIVE_EMOTIONS
from moodstream.schemas.tables import DWELL_COLUMNS, DWELL_LABELS

ALL_MARKER: Final[str] = "__all"
"""Stands for "every value" in a filter (no store, branch or camera id can start with ``_``)."""
ALL_SQL: Final[str] = f"'{ALL_MARKER}'"
"""The variables' custom all value: an SQL literal, inserted by Grafana without formatting."""


def selected(variable: str, column: str) -> str:
    """Filter ``column`` on the multi-value variable ``variable`` ("All": no filter; none: no row)."""
    values = f"ARRAY[${{{variable}:sqlstring}}]::text[]"
    return f"({column} = ANY ({values}) OR {ALL_SQL} = ANY ({values}))"


CAMERA_KEY: Final[str] = "store_id || '/' || camera_id"
"""A camera's store-qualified id (``store/camera``), the value of the camera variable."""

SCOPE_FILTER: Final[str] = f"{selected('branch', 'branch')} AND {selected('store', 'store_id')}"
"""Branch and store filter of the per-store views."""
CAMERA_FILTER: Final[str] = f"{SCOPE_FILTER} AND {selected('camera', CAMERA_KEY)}"
"""Branch, store and camera filter of ``camera_activity_v``."""


def satisfaction_sql(prefix: str, denominator: str) -> str:
    """SQL of ``schemas.labels.satisfaction_index`` over a group of rows: (happy - (angry + disgust + fear +
    sad)) / denominator, NULL when it is 0 or every hour is suppressed; ``prefix``: visits_ or faces_."""
    negative = " + ".join(f"{prefix}{e}" for e in NEGATIVE_EMOTIONS)
    return f"(sum({prefix}happy) - sum({negative}))::float8 / NULLIF(sum({denominator}), 0)"


VISIT_SATISFACTION_EXPR: Final[str] = satisfaction_sql("visits_", "readable_visits")
"""The headline: satisfaction per visit, over readable visits of the hours shown."""
FACE_SATISFACTION_EXPR: Final[str] = satisfaction_sql("faces_", "classified_faces")
"""Secondary: satisfaction per classified face."""
DWELL_MEAN_EXPR: Final[str] = "sum(dwell_seconds_sum) / NULLIF(sum(visits), 0)"
"""Mean dwell time of the visits of a group of rows, seconds (NULL without visits)."""

HOURS: Final[str] = f"store_hours($__timeFrom(), $__timeTo())\nWHERE {SCOPE_FILTER}"
"""The store-local hours that start in the dashboard's range, of the selected stores (``store_hours``: the
rows of ``store_hourly_v``, found through the ``bucket_start`` index)."""

# --- variables ----------------------------------------------------------------------------------------

BRANCH_VARIABLE: Final[str] = "SELECT DISTINCT branch FROM stores ORDER BY 1"
STORE_VARIABLE: Final[str] = (
    "SELECT id AS __value, name || ' (' || id || ')' AS __text "
    f"FROM stores WHERE {selected('branch', 'branch')} ORDER BY 2"
)
CAMERA_VARIABLE: Final[str] = (
    "SELECT c.store_id || '/' || c.id AS __value, "
    "s.name || ' / ' || c.name || ' (' || c.store_id || '/' || c.id || ')' AS __text "
    "FROM cameras AS c JOIN stores AS s ON s.id = c.store_id "
    f"WHERE {selected('branch', 's.branch')} AND {selected('store', 'c.store_id')} ORDER BY 2"
)
"""Cameras of the selected stores, valued ``store/camera`` (camera ids repeat across stores)."""

# --- Customer satisfaction: visits (the headline) ---------------------------------------------------------


def _per_store_over_time(expression: str, alias: str) -> str:
    return f"""SELECT $__timeGroupAlias(hour_start, $__interval),
  store_id AS metric,
  {expression} AS {alias}
FROM {HOURS}
GROUP BY 1, 2
ORDER BY 1, 2"""


VISIT_SATISFACTION_OVER_TIME: Final[str] = _per_store_over_time(VISIT_SATISFACTION_EXPR, "satisfaction")
"""Per store (series keyed by store id), in windows of $__interval, at least one hour."""

VISITORS_PER_HOUR: Final[str] = f"""SELECT hour_start AS "time",
  store_id AS metric,
  visits AS visitors
FROM {HOURS}
ORDER BY 1, 2"""
"""Visits that started in each store-local hour, per store (a count: never suppressed)."""

VISITORS_AND_SATISFACTION: Final[str] = f"""SELECT COALESCE(sum(visits), 0)::bigint AS visitors,
  COALESCE(sum(readable_visits), 0)::bigint AS readable,
  {VISIT_SATISFACTION_EXPR} AS satisfaction,
  {DWELL_MEAN_EXPR} AS dwell_mean
FROM {HOURS}"""


def _mix_over_time(prefix: str, denominator: str) -> str:
    shares = ",\n  ".join(
        f"sum({prefix}{e})::float8 / NULLIF(sum({denominator}), 0) AS {e}" for e in EMOTIONS
    )
    return f"""SELECT $__timeGroupAlias(hour_start, $__interval),
  {shares}
FROM {HOURS}
GROUP BY 1
ORDER BY 1"""


VISIT_EMOTION_MIX_OVER_TIME: Final[str] = _mix_over_time("visits_", "readable_visits")
"""Share (0..1) of the readable visits per emotion, in windows of $__interval (at least one hour)."""


def _emotion_totals(prefix: str, alias: str) -> str:
    labels = ", ".join(f"({i}, '{e}')" for i, e in enumerate(EMOTIONS))
    values = ", ".join(f"({i}, v.{prefix}{e})" for i, e in enumerate(EMOTIONS))
    return f"""SELECT l.emotion, COALESCE(sum(d.n), 0)::bigint AS {alias}
FROM (VALUES {labels}) AS l(ord, emotion)
LEFT JOIN (
  SELECT e.ord, e.n
  FROM store_hours($__timeFrom(), $__timeTo()) AS v
  CROSS JOIN LATERAL (VALUES {values}) AS e(ord, n)
  WHERE {SCOPE_FILTER}
) AS d ON d.ord = l.ord
GROUP BY l.ord, l.emotion
ORDER BY l.ord"""


VISIT_EMOTION_TOTALS: Final[str] = _emotion_totals("visits_", "visits")
"""Readable visits per emotion over the range, in label order (0 when none; suppressed hours left out)."""

DWELL_HISTOGRAM: Final[str] = f"""SELECT b.dwell, COALESCE(sum(d.n), 0)::bigint AS visits
FROM (VALUES {", ".join(f"({i}, '{label}')" for i, label in enumerate(DWELL_LABELS))}) AS b(ord, dwell)
LEFT JOIN (
  SELECT e.ord, e.n
  FROM store_hours($__timeFrom(), $__timeTo()) AS v
  CROSS JOIN LATERAL (VALUES {", ".join(f"({i}, v.{c})" for i, c in enumerate(DWELL_COLUMNS))}) AS e(ord, n)
  WHERE {SCOPE_FILTER}
) AS d ON d.ord = b.ord
GROUP BY b.ord, b.dwell
ORDER BY b.ord"""
"""Visits per dwell-time bin over the range (every bin listed, 0 when empty)."""

STORE_RANKING: Final[str] = f"""SELECT branch, store_name AS store, store_id,
  sum(visits)::bigint AS visits,
  sum(readable_visits)::bigint AS readable,
  {VISIT_SATISFACTION_EXPR} AS satisfaction,
  sum(visits_happy)::float8 / NULLIF(sum(readable_visits), 0) AS happy_share,
  {DWELL_MEAN_EXPR} AS dwell_mean,
  {FACE_SATISFACTION_EXPR} AS satisfaction_per_face,
  (count(*) FILTER (WHERE suppressed))::bigint AS suppressed_hours
FROM {HOURS}
GROUP BY branch, store_id, store_name
ORDER BY satisfaction DESC NULLS LAST, visits DESC, store_id"""

DAILY_TRADE: Final[str] = f"""SELECT to_char(local_day, 'YYYY-MM-DD') AS day, branch,
  store_name AS store, store_id,
  sum(visits)::bigint AS visits,
  sum(readable_visits)::bigint AS readable,
  {VISIT_SATISFACTION_EXPR} AS satisfaction,
  sum(visits_happy)::float8 / NULLIF(sum(readable_visits), 0) AS happy_share,
  {DWELL_MEAN_EXPR} AS dwell_mean,
  (count(*) FILTER (WHERE suppressed))::bigint AS suppressed_hours
FROM store_hours($__timeFrom()::timestamptz - interval '1 day', $__timeTo()::timestamptz + interval '1 day')
WHERE local_day >= ($__timeFrom()::timestamptz AT TIME ZONE timezone)::date
  AND local_day <= ($__timeTo()::timestamptz AT TIME ZONE timezone)::date
  AND {SCOPE_FILTER}
GROUP BY local_day, branch, store_id, store_name
ORDER BY local_day DESC, branch, store_id"""
"""One row per store and store-local day touching the range, whole days (the days of ``moodstream report``;
sums of the hours shown, as in ``store_daily_v``)."""

# --- Customer satisfaction: faces (secondary) ------------------------------------------------------------

FACE_SATISFACTION_OVER_TIME: Final[str] = _per_store_over_time(FACE_SATISFACTION_EXPR, "satisfaction")

FACE_EMOTION_TOTALS: Final[str] = _emotion_totals("faces_", "faces")

FACES_AND_FRAMES: Final[str] = f"""SELECT COALESCE(sum(faces), 0)::bigint AS faces,
  COALESCE(sum(readable_faces), 0)::bigint AS readable,
  COALESCE(sum(classified_faces), 0)::bigint AS classified,
  COALESCE(sum(frames), 0)::bigint AS frames,
  {FACE_SATISFACTION_EXPR} AS satisfaction
FROM {HOURS}"""

# --- Camera health --------------------------------------------------------------------------------------

FRAMES_PER_CAMERA: Final[str] = f"""SELECT $__timeGroupAlias(bucket_start, $__interval),
  {CAMERA_KEY} AS metric,
  sum(frames)::float8 * 60 / GREATEST($__interval_ms / 1000.0, max(bucket_seconds)) AS frames_per_minute
FROM camera_activity_v
WHERE $__timeFilter(bucket_start) AND {CAMERA_FILTER}
GROUP BY 1, 2
ORDER BY 1, 2"""
"""Frames per minute per camera: frames of each window over the window's length (or over the bucket
width when a window is shorter than a bucket), so the line does not move with the zoom level."""

_LAST_FRAME = f"""SELECT s.branch, c.store_id, c.id AS camera_id, c.enabled AND s.enabled AS enabled,
  lf.last_frame_at,
  EXTRACT(epoch FROM $__timeTo()::timestamptz - lf.last_frame_at)::bigint AS silent_seconds
FROM cameras AS c
JOIN stores AS s ON s.id = c.store_id
LEFT JOIN (
  SELECT store_id, camera_id, max(last_frame_at) AS last_frame_at
  FROM camera_activity_v
  WHERE bucket_start <= $__timeTo()::timestamptz
    AND bucket_start > $__timeTo()::timestamptz - interval '30 days'
    AND last_frame_at <= $__timeTo()::timestamptz
  GROUP BY store_id, camera_id
) AS lf ON lf.store_id = c.store_id AND lf.camera_id = c.id
WHERE {selected("branch", "s.branch")} AND {selected("store", "c.store_id")}
  AND {selected("camera", "c.store_id || '/' || c.id")}"""
"""Every selected camera with its newest counted frame up to the end of the range (looked up
over the 30 days before it; older or never: NULL) and how long it has been silent since."""

LAST_FRAME_SEEN: Final[str] = f"""{_LAST_FRAME}
ORDER BY lf.last_frame_at ASC NULLS FIRST, c.store_id, c.id"""

SILENT_CAMERAS: Final[str] = f"""{_LAST_FRAME}
  AND c.enabled AND s.enabled
  AND (lf.last_frame_at IS NULL
       OR lf.last_frame_at < $__timeTo()::timestamptz
          - make_interval(mins => CAST(${{silent_minutes:sqlstring}} AS integer)))
ORDER BY lf.last_frame_at ASC NULLS FIRST, c.store_id, c.id"""

_LOSS_FILTER = f"""$__timeFilter(fl.bucket_start)
  AND {selected("branch", "s.branch")} AND {selected("store", "fl.store_id")}
  AND {selected("camera", "fl.store_id || '/' || fl.camera_id")}"""

FRAME_LOSSES_OVER_TIME: Final[str] = f"""SELECT $__timeGroupAlias(fl.bucket_start, 1h),
  sum(fl.shed)::bigint AS shed,
  sum(fl.dead)::bigint AS dead
FROM frame_losses AS fl
JOIN stores AS s ON s.id = fl.store_id
WHERE {_LOSS_FILTER}
GROUP BY 1
ORDER BY 1"""
"""Frames shed and dead-lettered per (UTC) hour: fixed windows, whatever the zoom."""

FRAME_LOSSES_TOTAL: Final[str] = f"""SELECT COALESCE(sum(fl.shed), 0)::bigint AS shed,
  COALESCE(sum(fl.dead), 0)::bigint AS dead
FROM frame_losses AS fl
JOIN stores AS s ON s.id = fl.store_id
WHERE {_LOSS_FILTER}"""
