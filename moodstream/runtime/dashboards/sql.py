"""SQL of the dashboards' panels and variables, written for Grafana's PostgreSQL datasource.

Grafana first replaces template variables (``$branch``, ``$store``, ``$camera``, ``$__interval``,
``$silent_minutes``, ``$min_visits``), then the datasource expands its macros (``$__timeFilter``,
``$__timeGroupAlias``, ``$__timeTo``). Every query reads only the public views/tables the read-only role
may SELECT.
"""

from __future__ import annotations

from typing import Final

from moodstream.schemas.labels import EMOTIONS, NEGATIVE_EMOTIONS
from moodstream.schemas.tables import DWELL_COLUMNS, DWELL_LABELS

SCOPE_FILTER: Final[str] = "branch IN ($branch) AND store_id IN ($store) AND camera_id IN ($camera)"
"""Variable filter on emotion_counts_v (camera ids repeat across stores, so both are filtered)."""


def satisfaction_sql(prefix: str, denominator: str) -> str:
    """SQL of ``schemas.labels.satisfaction_index`` over a group of rows: (happy - (angry + disgust + fear +
    sad)) / denominator, NULL when it is 0; ``prefix`` picks the counts (``visits_`` or ``faces_``)."""
    negative = " + ".join(f"{prefix}{e}" for e in NEGATIVE_EMOTIONS)
    return f"(sum({prefix}happy) - sum({negative}))::float8 / NULLIF(sum({denominator}), 0)"


VISIT_SATISFACTION_EXPR: Final[str] = satisfaction_sql("visits_", "readable_visits")
"""The headline: satisfaction per visit, over readable visits."""
FACE_SATISFACTION_EXPR: Final[str] = satisfaction_sql("faces_", "classified_faces")
"""Secondary: satisfaction per classified face."""
DWELL_MEAN_EXPR: Final[str] = "sum(dwell_seconds_sum) / NULLIF(sum(visits), 0)"
"""Mean dwell time of the visits of a group of rows, seconds (NULL without visits)."""

MIN_VISITS_HAVING: Final[str] = "HAVING sum(visits) >= $min_visits"
"""Small-group suppression: a group with fewer visits (people) than the dashboard constant ``min_visits``
shows no emotion (0 shows everything), so nobody reads the emotions of one or two identifiable people."""

# --- variables ----------------------------------------------------------------------------------------

BRANCH_VARIABLE: Final[str] = "SELECT DISTINCT branch FROM stores ORDER BY 1"
STORE_VARIABLE: Final[str] = (
    "SELECT id AS __value, name || ' (' || id || ')' AS __text "
    "FROM stores WHERE branch IN ($branch) ORDER BY 2"
)
CAMERA_VARIABLE: Final[str] = "SELECT DISTINCT id FROM cameras WHERE store_id IN ($store) ORDER BY 1"

# --- Customer satisfaction: visits (the headline) ---------------------------------------------------------


def _per_store_over_time(
    expression: str, alias: str, having: str = MIN_VISITS_HAVING, every: str = "$__interval"
) -> str:
    lines = [
        f"SELECT $__timeGroupAlias(bucket_start, {every}),",
        "  store_name AS metric,",
        f"  {expression} AS {alias}",
        "FROM emotion_counts_v",
        f"WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}",
        "GROUP BY 1, 2",
        *([having] if having else []),
        "ORDER BY 1, 2",
    ]
    return "\n".join(lines)


VISIT_SATISFACTION_OVER_TIME: Final[str] = _per_store_over_time(VISIT_SATISFACTION_EXPR, "satisfaction")

VISITORS_PER_HOUR: Final[str] = _per_store_over_time("sum(visits)::bigint", "visitors", having="", every="1h")
"""Visits that started in each hour, per store (counts only: no emotion, so never suppressed)."""

VISITORS_AND_SATISFACTION: Final[str] = f"""SELECT COALESCE(sum(visits), 0)::bigint AS visitors,
  COALESCE(sum(readable_visits), 0)::bigint AS readable,
  CASE WHEN COALESCE(sum(visits), 0) >= $min_visits THEN {VISIT_SATISFACTION_EXPR} END AS satisfaction,
  {DWELL_MEAN_EXPR} AS dwell_mean
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}"""


def _mix_over_time(prefix: str) -> str:
    return f"""SELECT $__timeGroupAlias(bucket_start, $__interval),
  {", ".join(f"sum({prefix}{e})::bigint AS {e}" for e in EMOTIONS)}
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY 1
{MIN_VISITS_HAVING}
ORDER BY 1"""


VISIT_EMOTION_MIX_OVER_TIME: Final[str] = _mix_over_time("visits_")


def _emotion_totals(prefix: str, alias: str) -> str:
    values = ", ".join(f"({i}, '{e}', v.{prefix}{e})" for i, e in enumerate(EMOTIONS))
    return f"""WITH picked AS (
  SELECT * FROM emotion_counts_v
  WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
)
SELECT e.emotion, sum(e.n)::bigint AS {alias}
FROM picked AS v
CROSS JOIN LATERAL (VALUES {values}) AS e(ord, emotion, n)
WHERE (SELECT COALESCE(sum(visits), 0) FROM picked) >= $min_visits
GROUP BY e.ord, e.emotion
ORDER BY e.ord"""


VISIT_EMOTION_TOTALS: Final[str] = _emotion_totals("visits_", "visits")

DWELL_HISTOGRAM: Final[str] = f"""SELECT b.dwell, COALESCE(sum(d.n), 0)::bigint AS visits
FROM (VALUES {", ".join(f"({i}, '{label}')" for i, label in enumerate(DWELL_LABELS))}) AS b(ord, dwell)
LEFT JOIN (
  SELECT e.ord, e.n
  FROM emotion_counts_v AS v
  CROSS JOIN LATERAL (VALUES {", ".join(f"({i}, v.{c})" for i, c in enumerate(DWELL_COLUMNS))}) AS e(ord, n)
  WHERE $__timeFilter(v.bucket_start) AND {SCOPE_FILTER}
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
  {FACE_SATISFACTION_EXPR} AS satisfaction_per_face
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY branch, store_id, store_name
{MIN_VISITS_HAVING}
ORDER BY satisfaction DESC NULLS LAST, visits DESC, store_id"""

# --- Customer satisfaction: faces (secondary) ------------------------------------------------------------

FACE_SATISFACTION_OVER_TIME: Final[str] = _per_store_over_time(FACE_SATISFACTION_EXPR, "satisfaction")

FACE_EMOTION_TOTALS: Final[str] = _emotion_totals("faces_", "faces")

FACES_AND_FRAMES: Final[str] = f"""SELECT COALESCE(sum(faces), 0)::bigint AS faces,
  COALESCE(sum(readable_faces), 0)::bigint AS readable,
  COALESCE(sum(classified_faces), 0)::bigint AS classified,
  COALESCE(sum(frames), 0)::bigint AS frames,
  CASE WHEN COALESCE(sum(visits), 0) >= $min_visits THEN {FACE_SATISFACTION_EXPR} END AS satisfaction
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}"""

# --- Camera health --------------------------------------------------------------------------------------

FRAMES_PER_CAMERA: Final[str] = f"""SELECT $__timeGroupAlias(bucket_start, $__interval),
  store_id || '/' || camera_id AS metric,
  sum(frames)::bigint AS frames
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY 1, 2
ORDER BY 1, 2"""

_LAST_FRAME = """SELECT s.branch, c.store_id, c.id AS camera_id, c.enabled AND s.enabled AS enabled,
  lf.last_frame_at,
  EXTRACT(epoch FROM $__timeTo()::timestamptz - lf.last_frame_at)::bigint AS silent_seconds
FROM cameras AS c
JOIN stores AS s ON s.id = c.store_id
LEFT JOIN (
  SELECT store_id, camera_id, max(last_frame_at) AS last_frame_at
  FROM emotion_counts
  WHERE bucket_start <= $__timeTo()::timestamptz
    AND bucket_start > $__timeTo()::timestamptz - interval '30 days'
    AND last_frame_at <= $__timeTo()::timestamptz
  GROUP BY store_id, camera_id
) AS lf ON lf.store_id = c.store_id AND lf.camera_id = c.id
WHERE s.branch IN ($branch) AND c.store_id IN ($store) AND c.id IN ($camera)"""
"""Every selected camera with its newest counted frame up to the end of the range (looked up
over the 30 days before it; older or never: NULL) and how long it has been silent since."""

LAST_FRAME_SEEN: Final[str] = f"""{_LAST_FRAME}
ORDER BY lf.last_frame_at ASC NULLS FIRST, c.store_id, c.id"""

SILENT_CAMERAS: Final[str] = f"""{_LAST_FRAME}
  AND c.enabled AND s.enabled
  AND (lf.last_frame_at IS NULL
       OR lf.last_frame_at < $__timeTo()::timestamptz - make_interval(mins => $silent_minutes))
ORDER BY lf.last_frame_at ASC NULLS FIRST, c.store_id, c.id"""

FRAME_LOSSES_OVER_TIME: Final[str] = """SELECT $__timeGroupAlias(fl.bucket_start, $__interval),
  sum(fl.shed)::bigint AS shed,
  sum(fl.dead)::bigint AS dead
FROM frame_losses AS fl
JOIN stores AS s ON s.id = fl.store_id
WHERE $__timeFilter(fl.bucket_start)
  AND s.branch IN ($branch) AND fl.store_id IN ($store) AND fl.camera_id IN ($camera)
GROUP BY 1
ORDER BY 1"""

FRAME_LOSSES_TOTAL: Final[str] = """SELECT COALESCE(sum(fl.shed), 0)::bigint AS shed,
  COALESCE(sum(fl.dead), 0)::bigint AS dead
FROM frame_losses AS fl
JOIN stores AS s ON s.id = fl.store_id
WHERE $__timeFilter(fl.bucket_start)
  AND s.branch IN ($branch) AND fl.store_id IN ($store) AND fl.camera_id IN ($camera)"""
