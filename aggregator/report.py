"""Per-branch satisfaction reports: the request, the domain model (counts, rows, totals) and the query over
``emotion_counts_v``. Visits come first (visitors, readable visits, emotion and satisfaction per visit,
dwell); face-level counts are secondary.

A report covers the local calendar days ``date_from`` .. ``date_to`` (both included) of each
store, in the store's own time zone, and groups the counts per branch, store and local day or
local hour. Renderers (:mod:`moodstream.aggregator.report_render`, with the HTML one in
:mod:`moodstream.aggregator.report_html`) turn a :class:`Report` into text; this module knows none of them.

Nothing here opens a database connection: callers pass a SQLAlchemy ``Connection``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as fixed_offset
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, RowMapping, text

from moodstream.schemas.labels import EMOTIONS, satisfaction_index
from moodstream.schemas.tables import (
    COUNT_COLUMNS,
    DWELL_COLUMNS,
    FACE_EMOTION_COLUMNS,
    VISIT_EMOTION_COLUMNS,
    ZONE_COUNT_COLUMNS,
)

MAX_REPORT_DAYS: Final[int] = 3660
"""Longest report span accepted (about ten years)."""

Granularity = Literal["day", "hour"]
ReportFormat = Literal["table", "csv", "json", "html"]


class ReportError(ValueError):
    """A report request that cannot be answered (bad dates, unknown branch or store)."""


class UnknownScopeError(ReportError):
    """The requested branch or store is not in the ``stores`` table."""


class ReportRequest(BaseModel):
    """What a report covers: optional branch/store filter, local date range, bucket granularity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    branch: str | None = Field(None, min_length=1, max_length=200, description="only this branch")
    store: str | None = Field(None, min_length=1, max_length=200, description="only this store id")
    zone: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="only the visits of this camera zone (zone_visits); frames and faces are not counted "
        "per zone and show 0",
    )
    date_from: date = Field(description="first local day included")
    date_to: date = Field(description="last local day included (inclusive)")
    by: Granularity = Field("day", description="bucket per local day or per local hour")
    min_visits: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="suppress the counts of every row with fewer visits (people) than this (0: show all); "
        "suppressed rows also stay out of the totals, so they cannot be recovered by subtraction",
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> ReportRequest:
        if self.date_to < self.date_from:
            raise ReportError(
                f"--from {self.date_from.isoformat()} is after --to {self.date_to.isoformat()}: "
                "give the earlier date as --from"
            )
        span = (self.date_to - self.date_from).days + 1
        if span > MAX_REPORT_DAYS:
            raise ReportError(f"the report spans {span} days; at most {MAX_REPORT_DAYS} are allowed")
        return self


def _ratio(numerator: float, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _shares(counts: tuple[int, ...], total: int) -> dict[str, float | None]:
    return {e: _ratio(n, total) for e, n in zip(EMOTIONS, counts, strict=True)}


def round_share(value: float | None) -> float | None:
    """A share or index rounded to 4 decimals for CSV/JSON (None stays None)."""
    return None if value is None else round(value, 4)


def _round_seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


_NO_EMOTIONS: Final[tuple[int, ...]] = (0,) * len(EMOTIONS)


@dataclass(frozen=True)
class Counts:
    """Visits, dwell and faces of a set of buckets (per-emotion tuples in EMOTIONS order).

    ``visit_emotions``: readable visits per emotion; ``dwell_bins``: visits per ``tables.DWELL_COLUMNS``
    bin; ``faces``: detected, ``readable_faces``: passed the quality gate, ``face_emotions``: classified
    faces (votes) per emotion.
    """

    frames: int = 0
    visits: int = 0
    readable_visits: int = 0
    visit_emotions: tuple[int, ...] = _NO_EMOTIONS
    dwell_seconds_sum: float = 0.0
    dwell_bins: tuple[int, ...] = (0,) * len(DWELL_COLUMNS)
    faces: int = 0
    readable_faces: int = 0
    face_emotions: tuple[int, ...] = _NO_EMOTIONS

    def __add__(self, other: Counts) -> Counts:
        summed: dict[str, object] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, tuple):
                summed[f.name] = tuple(a + b for a, b in zip(mine, theirs, strict=True))
            else:
                summed[f.name] = mine + theirs
        return Counts(**summed)  # type: ignore[arg-type]

    def visit_count(self, emotion: str) -> int:
        """Readable visits whose emotion is ``emotion``."""
        return self.visit_emotions[EMOTIONS.index(emotion)]

    def face_count(self, emotion: str) -> int:
        """Classified faces whose emotion is ``emotion``."""
        return self.face_emotions[EMOTIONS.index(emotion)]

    @property
    def classified_faces(self) -> int:
        """Faces classified (the votes), the denominator of the face-level shares and index."""
        return sum(self.face_emotions)

    def visit_shares(self) -> dict[str, float | None]:
        """Emotion -> visits / readable visits (None when no visit was readable)."""
        return _shares(self.visit_emotions, self.readable_visits)

    def face_shares(self) -> dict[str, float | None]:
        """Emotion -> classified faces / all classified faces (None when none was classified)."""
        return _shares(self.face_emotions, self.classified_faces)

    @property
    def visit_satisfaction_index(self) -> float | None:
        """The headline: ``schemas.labels.satisfaction_index`` over readable visits (None without any)."""
        return satisfaction_index(dict(zip(EMOTIONS, self.visit_emotions, strict=True)), self.readable_visits)

    @property
    def face_satisfaction_index(self) -> float | None:
        """The same index over classified faces (None without any)."""
        return satisfaction_index(dict(zip(EMOTIONS, self.face_emotions, strict=True)), self.classified_faces)

    @property
    def dwell_seconds_mean(self) -> float | None:
        """Mean dwell time of the visits in seconds (None without visits)."""
        return _ratio(self.dwell_seconds_sum, self.visits)

    def as_dict(self) -> dict[str, object]:
        """Flat JSON/CSV-ready mapping, visits first: counts, shares (``visit_share_<emotion>``), index and
        dwell, then faces the same way (``face_share_<emotion>``)."""
        visit_shares, face_shares = self.visit_shares(), self.face_shares()
        return {
            "frames": self.frames,
            "visits": self.visits,
            "readable_visits": self.readable_visits,
            **{f"visits_{e}": self.visit_count(e) for e in EMOTIONS},
            **{f"visit_share_{e}": round_share(visit_shares[e]) for e in EMOTIONS},
            "visit_satisfaction_index": round_share(self.visit_satisfaction_index),
            "dwell_seconds_mean": _round_seconds(self.dwell_seconds_mean),
            "dwell_seconds_sum": _round_seconds(self.dwell_seconds_sum),
            **dict(zip(DWELL_COLUMNS, self.dwell_bins, strict=True)),
            "faces": self.faces,
            "readable_faces": self.readable_faces,
            "classified_faces": self.classified_faces,
            **{f"faces_{e}": self.face_count(e) for e in EMOTIONS},
            **{f"face_share_{e}": round_share(face_shares[e]) for e in EMOTIONS},
            "face_satisfaction_index": round_share(self.face_satisfaction_index),
        }


COUNT_KEYS: Final[tuple[str, ...]] = tuple(Counts().as_dict())
"""Keys of :meth:`Counts.as_dict`, in order (the CSV columns after the row's identity)."""


@dataclass(frozen=True)
class ReportRow:
    """One (branch, store, local period) line of a report; ``period_start`` is local wall time."""

    branch: str
    store_id: str
    store_name: str
    timezone: str
    period_start: datetime
    counts: Counts
    suppressed: bool = False
    """True when the row had fewer visits than ``min_visits``: ``counts`` then keeps only ``frames``."""
    utc_offset: timedelta | None = None
    """The store's UTC offset at ``period_start``: it tells the two occurrences of a local hour apart when
    clocks go back (the second one also has ``period_start.fold == 1``)."""

    def suppress_below(self, min_visits: int) -> ReportRow:
        """This row, or (when it has fewer than ``min_visits`` visits) a copy with only its frames kept."""
        if self.counts.visits >= min_visits:
            return self
        return replace(self, counts=Counts(frames=self.counts.frames), suppressed=True)

    @property
    def ambiguous(self) -> bool:
        """True when ``period_start`` is a local time that occurs twice (clocks went back then)."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return False
        first = self.period_start.replace(tzinfo=zone, fold=0)
        return first.utcoffset() != self.period_start.replace(tzinfo=zone, fold=1).utcoffset()

    def period_label_iso(self) -> str:
        """``period_start`` in ISO 8601 to the minute, local; with its UTC offset when that local time
        occurs twice (``2026-10-25T02:00+02:00``, then ``...T02:00+01:00``)."""
        if self.ambiguous and self.utc_offset is not None:
            aware = self.period_start.replace(tzinfo=fixed_offset(self.utc_offset))
            return aware.isoformat(timespec="minutes")
        return self.period_start.isoformat(timespec="minutes")

    def as_dict(self) -> dict[str, object]:
        """Flat JSON/CSV-ready mapping: the row's identity, then :meth:`Counts.as_dict` (every count None
        but ``frames`` when suppressed)."""
        out: dict[str, object] = {
            "branch": self.branch,
            "store_id": self.store_id,
            "store_name": self.store_name,
            "timezone": self.timezone,
            "period_start": self.period_label_iso(),
        }
        counts = self.counts.as_dict()
        if self.suppressed:
            counts = {k: v if k == "frames" else None for k, v in counts.items()}
        return {**out, **counts, "suppressed": self.suppressed}


@dataclass(frozen=True)
class Report:
    """Rows of one report plus the totals a reader expects (per store, per branch, overall)."""

    request: ReportRequest
    rows: tuple[ReportRow, ...]
    generated_at: datetime = field(compare=False)

    def totals_by(self, key: Callable[[ReportRow], tuple[str, ...]]) -> dict[tuple[str, ...], Counts]:
        """Counts summed per key (e.g. ``lambda r: (r.branch, r.store_id)``), in first-seen order;
        suppressed rows are left out."""
        out: dict[tuple[str, ...], Counts] = {}
        for row in self.rows:
            if row.suppressed:  # kept out, so a suppressed row cannot be recovered by subtraction
                continue
            k = key(row)
            out[k] = out.get(k, Counts()) + row.counts
        return out

    def store_totals(self) -> dict[tuple[str, ...], Counts]:
        """(branch, store_id, store_name) -> counts over the whole range."""
        return self.totals_by(lambda r: (r.branch, r.store_id, r.store_name))

    def branch_totals(self) -> dict[tuple[str, ...], Counts]:
        """(branch,) -> counts over the whole range."""
        return self.totals_by(lambda r: (r.branch,))

    def overall(self) -> Counts:
        """Counts over every row that is not suppressed."""
        total = Counts()
        for row in self.rows:
            if not row.suppressed:
                total = total + row.counts
        return total


_KNOWN_STORES_SQL = text("SELECT id, branch FROM stores ORDER BY id")

_SUMMED_COLUMNS: Final[tuple[str, ...]] = (*COUNT_COLUMNS, "dwell_seconds_sum")

_REPORT_SQL = text(
    f"""
WITH b AS (
  SELECT v.*,
         CASE WHEN CAST(:unit AS text) = 'hour'
              THEN v.bucket_start - ((v.bucket_start AT TIME ZONE v.timezone)
                                     - date_trunc('hour', v.bucket_start AT TIME ZONE v.timezone))
              ELSE date_trunc('day', v.bucket_start AT TIME ZONE v.timezone) AT TIME ZONE v.timezone
         END AS period_instant
  FROM emotion_counts_v AS v
  WHERE v.bucket_start >= CAST(:day_from AS timestamptz) - interval '1 day'
    AND v.bucket_start < CAST(:day_after AS timestamptz) + interval '1 day'
    AND v.bucket_start >= (CAST(:day_from AS timestamp) AT TIME ZONE v.timezone)
    AND v.bucket_start < (CAST(:day_after AS timestamp) AT TIME ZONE v.timezone)
    AND (CAST(:branch AS text) IS NULL OR v.branch = CAST(:branch AS text))
    AND (CAST(:store AS text) IS NULL OR v.store_id = CAST(:store AS text))
)
SELECT b.branch, b.store_id, b.store_name, b.timezone, b.period_instant,
       b.period_instant AT TIME ZONE b.timezone AS period_start,
       {", ".join(f"sum(b.{c}) AS {c}" for c in _SUMMED_COLUMNS)}
FROM b
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 5
"""
)
"""Counts per branch, store and local period. Local day D of a store spans
[D 00:00, D+1 00:00) in its time zone; the first two bounds (±1 day, wider than any UTC offset)
only let PostgreSQL use the bucket_start index. Periods are grouped by the instant they start
(``period_instant``), not by their local wall time: when clocks go back, the repeated local hour is two
periods (e.g. 02:00 +02:00 and 02:00 +01:00), never merged into one."""


_ZONE_REPORT_SQL = text(
    f"""
WITH z AS (
  SELECT zv.*, s.branch, COALESCE(s.name, zv.store_id) AS store_name,
         COALESCE(s.timezone, 'UTC') AS timezone
  FROM zone_visits AS zv
  LEFT JOIN stores s ON s.id = zv.store_id
  WHERE zv.zone = CAST(:zone AS text)
    AND zv.bucket_start >= CAST(:day_from AS timestamptz) - interval '1 day'
    AND zv.bucket_start < CAST(:day_after AS timestamptz) + interval '1 day'
), b AS (
  SELECT z.*,
         CASE WHEN CAST(:unit AS text) = 'hour'
              THEN z.bucket_start - ((z.bucket_start AT TIME ZONE z.timezone)
                                     - date_trunc('hour', z.bucket_start AT TIME ZONE z.timezone))
              ELSE date_trunc('day', z.bucket_start AT TIME ZONE z.timezone) AT TIME ZONE z.timezone
         END AS period_instant
  FROM z
  WHERE z.bucket_start >= (CAST(:day_from AS timestamp) AT TIME ZONE z.timezone)
    AND z.bucket_start < (CAST(:day_after AS timestamp) AT TIME ZONE z.timezone)
    AND (CAST(:branch AS text) IS NULL OR z.branch = CAST(:branch AS text))
    AND (CAST(:store AS text) IS NULL OR z.store_id = CAST(:store AS text))
)
SELECT b.branch, b.store_id, b.store_name, b.timezone, b.period_instant,
       b.period_instant AT TIME ZONE b.timezone AS period_start,
       {
        ", ".join(
            f"sum(b.{c}) AS {c}" if c in (*ZONE_COUNT_COLUMNS, "dwell_seconds_sum") else f"0 AS {c}"
            for c in _SUMMED_COLUMNS
        )
    }
FROM b
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 5
"""
)
"""The report's query over ``zone_visits`` for one zone, periods as in ``_REPORT_SQL`` (grouped by the
instant they start): visits and dwell; frames and faces are 0."""

_KNOWN_ZONES_SQL = text(
    """
SELECT DISTINCT z.zone FROM zone_visits z LEFT JOIN stores s ON s.id = z.store_id
WHERE (CAST(:branch AS text) IS NULL OR s.branch = CAST(:branch AS text))
  AND (CAST(:store AS text) IS NULL OR z.store_id = CAST(:store AS text))
ORDER BY 1
"""
)


def check_zone(conn: Connection, request: ReportRequest) -> None:
    """Raise :class:`UnknownScopeError` when ``request.zone`` has no counted visit in the branch/store."""
    if request.zone is None:
        return
    params = {"branch": request.branch, "store": request.store}
    zones = [str(r.zone) for r in conn.execute(_KNOWN_ZONES_SQL, params)]
    if request.zone not in zones:
        where = f" of store {request.store!r}" if request.store else ""
        where += f" of branch {request.branch!r}" if request.branch and not request.store else ""
        known = ", ".join(zones) or "none has counted a visit yet"
        raise UnknownScopeError(
            f"unknown zone {request.zone!r} (zones{where} with counted visits: {known}); zones are "
            "the cameras' zones[].id in stores.yaml"
        )


def check_scope(conn: Connection, request: ReportRequest) -> None:
    """Raise :class:`UnknownScopeError` when the branch or store is not registered."""
    store_branch = {str(r.id): str(r.branch) for r in conn.execute(_KNOWN_STORES_SQL)}
    branches = sorted(set(store_branch.values()))
    if request.branch is not None and request.branch not in branches:
        known = ", ".join(branches) or "none registered"
        raise UnknownScopeError(f"unknown branch {request.branch!r} (known branches: {known})")
    if request.store is None:
        return
    if request.store not in store_branch:
        known = ", ".join(sorted(store_branch)) or "none registered"
        raise UnknownScopeError(f"unknown store {request.store!r} (known stores: {known})")
    if request.branch is not None and store_branch[request.store] != request.branch:
        raise UnknownScopeError(
            f"store {request.store!r} belongs to branch {store_branch[request.store]!r}, "
            f"not {request.branch!r}"
        )


def fetch_report(conn: Connection, request: ReportRequest, now: datetime | None = None) -> Report:
    """Check the scope, run the report query and return its rows (ordered branch, store, period)."""
    check_scope(conn, request)
    check_zone(conn, request)
    params = {
        "unit": request.by,
        "day_from": request.date_from.isoformat(),
        "day_after": (request.date_to + timedelta(days=1)).isoformat(),
        "branch": request.branch,
        "store": request.store,
        "zone": request.zone,
    }
    query = _REPORT_SQL if request.zone is None else _ZONE_REPORT_SQL
    rows = tuple(_to_row(r._mapping).suppress_below(request.min_visits) for r in conn.execute(query, params))
    return Report(request=request, rows=rows, generated_at=now or datetime.now().astimezone())


def _to_row(m: RowMapping) -> ReportRow:
    def ints(columns: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(int(m[c]) for c in columns)

    counts = Counts(
        frames=int(m["frames"]),
        visits=int(m["visits"]),
        readable_visits=int(m["readable_visits"]),
        visit_emotions=ints(VISIT_EMOTION_COLUMNS),
        dwell_seconds_sum=float(m["dwell_seconds_sum"]),
        dwell_bins=ints(DWELL_COLUMNS),
        faces=int(m["faces"]),
        readable_faces=int(m["readable_faces"]),
        face_emotions=ints(FACE_EMOTION_COLUMNS),
    )
    local: datetime = m["period_start"]
    offset = local - m["period_instant"].astimezone(UTC).replace(tzinfo=None)
    return ReportRow(
        branch=str(m["branch"] or ""),
        store_id=str(m["store_id"]),
        store_name=str(m["store_name"] or m["store_id"]),
        timezone=str(m["timezone"]),
        period_start=_with_fold(local, str(m["timezone"]), offset),
        counts=counts,
        utc_offset=offset,
    )


def _with_fold(local: datetime, zone_name: str, offset: timedelta) -> datetime:
    """``local`` with ``fold=1`` when it is the second occurrence of a repeated local time (its offset is
    the one ``fold=1`` gives), so the two stay apart in Python too."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return local
    second = local.replace(tzinfo=zone, fold=1)
    if second.utcoffset() == offset and local.replace(tzinfo=zone, fold=0).utcoffset() != offset:
        return local.replace(fold=1)
    return local
