"""Per-branch satisfaction reports: the request, the domain model (counts, rows, totals) and the query over
``emotion_counts_v``.

A report covers the local calendar days ``date_from`` .. ``date_to`` (both included) of each
store, in the store's own time zone, and groups the counts per branch, store and local day or
local hour. Renderers (:mod:`moodstream.aggregator.report_render`, with the HTML one in
:mod:`moodstream.aggregator.report_html`) turn a :class:`Report` into text; this module knows none of them.

Nothing here opens a database connection: callers pass a SQLAlchemy ``Connection``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, RowMapping, text

from moodstream.schemas.labels import EMOTIONS, satisfaction_index

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
    date_from: date = Field(description="first local day included")
    date_to: date = Field(description="last local day included (inclusive)")
    by: Granularity = Field("day", description="bucket per local day or per local hour")
    min_faces: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="suppress the counts of every row with fewer faces than this (0: show all); "
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


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass(frozen=True)
class Counts:
    """Frames, faces and per-emotion counts (EMOTIONS order) of a set of buckets."""

    frames: int = 0
    faces: int = 0
    emotions: tuple[int, ...] = (0,) * len(EMOTIONS)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            frames=self.frames + other.frames,
            faces=self.faces + other.faces,
            emotions=tuple(a + b for a, b in zip(self.emotions, other.emotions, strict=True)),
        )

    def count(self, emotion: str) -> int:
        """Count of one emotion label."""
        return self.emotions[EMOTIONS.index(emotion)]

    def shares(self) -> dict[str, float | None]:
        """Emotion -> count / faces (None when no face was seen)."""
        return {e: _ratio(n, self.faces) for e, n in zip(EMOTIONS, self.emotions, strict=True)}

    @property
    def satisfaction_index(self) -> float | None:
        """``schemas.labels.satisfaction_index`` over ``faces`` (None when faces is 0, as the views)."""
        return satisfaction_index(dict(zip(EMOTIONS, self.emotions, strict=True)), self.faces)


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
    """True when the row had fewer faces than ``min_faces``: ``counts`` then keeps only ``frames``."""

    def suppress_below(self, min_faces: int) -> ReportRow:
        """This row, or (when it has fewer than ``min_faces`` faces) a copy with only its frames kept."""
        if self.counts.faces >= min_faces:
            return self
        return replace(self, counts=Counts(frames=self.counts.frames), suppressed=True)

    def as_dict(self) -> dict[str, object]:
        """Flat JSON/CSV-ready mapping (shares as ``share_<emotion>``; None everywhere when suppressed)."""
        out: dict[str, object] = {
            "branch": self.branch,
            "store_id": self.store_id,
            "store_name": self.store_name,
            "timezone": self.timezone,
            "period_start": self.period_start.isoformat(timespec="minutes"),
            "frames": self.counts.frames,
            "faces": None if self.suppressed else self.counts.faces,
        }
        out.update({e: None if self.suppressed else self.counts.count(e) for e in EMOTIONS})
        out.update({f"share_{e}": round_share(s) for e, s in self.counts.shares().items()})
        out["satisfaction_index"] = round_share(self.counts.satisfaction_index)
        out["suppressed"] = self.suppressed
        return out


def round_share(value: float | None) -> float | None:
    """A share or index rounded to 4 decimals for CSV/JSON (None stays None)."""
    return None if value is None else round(value, 4)


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

_REPORT_SQL = text(
    f"""
SELECT v.branch, v.store_id, v.store_name, v.timezone,
       date_trunc(CAST(:unit AS text), v.bucket_start AT TIME ZONE v.timezone) AS period_start,
       sum(v.frames) AS frames, sum(v.faces) AS faces,
       {", ".join(f"sum(v.{e}) AS {e}" for e in EMOTIONS)}
FROM emotion_counts_v AS v
WHERE v.bucket_start >= CAST(:day_from AS timestamptz) - interval '1 day'
  AND v.bucket_start < CAST(:day_after AS timestamptz) + interval '1 day'
  AND v.bucket_start >= (CAST(:day_from AS timestamp) AT TIME ZONE v.timezone)
  AND v.bucket_start < (CAST(:day_after AS timestamp) AT TIME ZONE v.timezone)
  AND (CAST(:branch AS text) IS NULL OR v.branch = CAST(:branch AS text))
  AND (CAST(:store AS text) IS NULL OR v.store_id = CAST(:store AS text))
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 5
"""
)
"""Counts per branch, store and local period. Local day D of a store spans
[D 00:00, D+1 00:00) in its time zone; the first two bounds (±1 day, wider than any UTC offset)
only let PostgreSQL use the bucket_start index."""


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
    params = {
        "unit": request.by,
        "day_from": request.date_from.isoformat(),
        "day_after": (request.date_to + timedelta(days=1)).isoformat(),
        "branch": request.branch,
        "store": request.store,
    }
    rows = tuple(
        _to_row(r._mapping).suppress_below(request.min_faces) for r in conn.execute(_REPORT_SQL, params)
    )
    return Report(request=request, rows=rows, generated_at=now or datetime.now().astimezone())


def _to_row(m: RowMapping) -> ReportRow:
    get = m.__getitem__
    counts = Counts(
        frames=int(get("frames")),
        faces=int(get("faces")),
        emotions=tuple(int(get(e)) for e in EMOTIONS),
    )
    return ReportRow(
        branch=str(get("branch") or ""),
        store_id=str(get("store_id")),
        store_name=str(get("store_name") or get("store_id")),
        timezone=str(get("timezone")),
        period_start=get("period_start"),
        counts=counts,
    )
