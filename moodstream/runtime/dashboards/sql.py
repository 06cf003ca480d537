"""SQL of the dashboards' panels and variables, written for Grafana's PostgreSQL datasource.

Grafana first replaces template variables (``$branch``, ``$store``, ``$camera``, ``$__interval``,
``$silent_minutes``, ``$min_faces``), then the datasource expands its macros (``$__timeFilter``,
``$__timeGroupAlias``, ``$__timeTo``). Every query reads only the public views/tables the read-only role
may SELECT.
"""

from __future__ import annotations

from typing import Final

from moodstream.schemas.labels import EMOTIONS

SCOPE_FILTER: Final[str] = "branch IN ($branch) AND store_id IN ($store) AND camera_id IN ($camera)"
"""Variable filter on emotion_counts_v (camera ids repeat across stores, so both are filtered)."""

SATISFACTION_EXPR: Final[str] = (
    "(sum(happy) - sum(angry + disgust + fear + sad))::float8 / NULLIF(sum(faces), 0)"
)
"""Satisfaction index of a group of rows: (happy - (angry+disgust+fear+sad)) / faces, NULL without faces."""

MIN_FACES_HAVING: Final[str] = "HAVING sum(faces) >= $min_faces"
"""Small-group suppression: a group with fewer faces than the dashboard constant ``min_faces`` is not shown
(0 shows everything), so nobody reads the emotions of one or two identifiable people."""

# --- variables ----------------------------------------------------------------------------------------

BRANCH_VARIABLE: Final[str] = "SELECT DISTINCT branch FROM stores ORDER BY 1"
STORE_VARIABLE: Final[str] = (
    "SELECT id AS __value, name || ' (' || id || ')' AS __text "
    "FROM stores WHERE branch IN ($branch) ORDER BY 2"
)
CAMERA_VARIABLE: Final[str] = "SELECT DISTINCT id FROM cameras WHERE store_id IN ($store) ORDER BY 1"

# --- Customer satisfaction -------------------------------------------------------------------------------

SATISFACTION_OVER_TIME: Final[str] = f"""SELECT $__timeGroupAlias(bucket_start, $__interval),
  store_name AS metric,
  {SATISFACTION_EXPR} AS satisfaction
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY 1, 2
{MIN_FACES_HAVING}
ORDER BY 1, 2"""

EMOTION_MIX_OVER_TIME: Final[str] = f"""SELECT $__timeGroupAlias(bucket_start, $__interval),
  {", ".join(f"sum({e})::bigint AS {e}" for e in EMOTIONS)}
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY 1
{MIN_FACES_HAVING}
ORDER BY 1"""

_EMOTION_VALUES = ", ".join(f"({i}, '{e}', v.{e})" for i, e in enumerate(EMOTIONS))

EMOTION_TOTALS: Final[str] = f"""WITH picked AS (
  SELECT * FROM emotion_counts_v
  WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
)
SELECT e.emotion, sum(e.n)::bigint AS faces
FROM picked AS v
CROSS JOIN LATERAL (VALUES {_EMOTION_VALUES}) AS e(ord, emotion, n)
WHERE (SELECT COALESCE(sum(faces), 0) FROM picked) >= $min_faces
GROUP BY e.ord, e.emotion
ORDER BY e.ord"""

FACES_AND_FRAMES: Final[str] = f"""SELECT COALESCE(sum(faces), 0)::bigint AS faces,
  COALESCE(sum(frames), 0)::bigint AS frames,
  CASE WHEN COALESCE(sum(faces), 0) >= $min_faces THEN {SATISFACTION_EXPR} END AS satisfaction
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}"""

STORE_RANKING: Final[str] = f"""SELECT branch, store_name AS store, store_id,
  sum(faces)::bigint AS faces,
  {SATISFACTION_EXPR} AS satisfaction,
  sum(happy)::float8 / NULLIF(sum(faces), 0) AS happy_share
FROM emotion_counts_v
WHERE $__timeFilter(bucket_start) AND {SCOPE_FILTER}
GROUP BY branch, store_id, store_name
{MIN_FACES_HAVING}
ORDER BY satisfaction DESC NULLS LAST, faces DESC, store_id"""

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
