"""Per-branch satisfaction reports: the query over ``emotion_counts_v`` and the text renderers.

A report covers the local calendar days ``date_from`` .. ``date_to`` (both included) of each
store, in the store's own time zone, and groups the counts per branch, store and local day or
local hour. Renderers turn a :class:`Report` into table / csv / json text; the HTML renderer
lives in :mod:`moodstream.aggregator.report_html`.

Nothing here opens a database connection: callers pass a SQLAlchemy ``Connection``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, RowMapping, text

from moodstream.schemas.labels import EMOTIONS, NEGATIVE_EMOTIONS

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
        """(happy - (angry + disgust + fear + sad)) / faces, None when faces is 0 (as the views)."""
        negative = sum(self.count(e) for e in NEGATIVE_EMOTIONS)
        return _ratio(self.count("happy") - negative, self.faces)


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
        out.update({f"share_{e}": _round(s) for e, s in self.counts.shares().items()})
        out["satisfaction_index"] = _round(self.counts.satisfaction_index)
        out["suppressed"] = self.suppressed
        return out


def _round(value: float | None) -> float | None:
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


# --- text renderers -------------------------------------------------------------------------------


def _fmt_index(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _fmt_share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _period_label(row: ReportRow, by: Granularity) -> str:
    return row.period_start.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00")


def render_csv(report: Report) -> str:
    """One CSV line per (branch, store, period) with counts, shares and the satisfaction index."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_csv_columns(), lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: "" if v is None else v for k, v in row.as_dict().items()})
    return buf.getvalue()


def _csv_columns() -> list[str]:
    return [
        "branch",
        "store_id",
        "store_name",
        "timezone",
        "period_start",
        "frames",
        "faces",
        *EMOTIONS,
        *(f"share_{e}" for e in EMOTIONS),
        "satisfaction_index",
        "suppressed",
    ]


def _totals_dict(keys: Sequence[str], totals: dict[tuple[str, ...], Counts]) -> list[dict[str, object]]:
    out = []
    for key, counts in totals.items():
        item: dict[str, object] = dict(zip(keys, key, strict=True))
        item.update(_counts_dict(counts))
        out.append(item)
    return out


def _counts_dict(counts: Counts) -> dict[str, object]:
    return {
        "frames": counts.frames,
        "faces": counts.faces,
        "counts": {e: counts.count(e) for e in EMOTIONS},
        "shares": {e: _round(s) for e, s in counts.shares().items()},
        "satisfaction_index": _round(counts.satisfaction_index),
    }


def render_json(report: Report) -> str:
    """JSON document: the request, rows, per-store and per-branch totals, overall totals."""
    req = report.request
    doc = {
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "request": {
            "branch": req.branch,
            "store": req.store,
            "from": req.date_from.isoformat(),
            "to": req.date_to.isoformat(),
            "by": req.by,
            "min_faces": req.min_faces,
        },
        "emotions": list(EMOTIONS),
        "rows": [row.as_dict() for row in report.rows],
        "stores": _totals_dict(("branch", "store_id", "store_name"), report.store_totals()),
        "branches": _totals_dict(("branch",), report.branch_totals()),
        "overall": _counts_dict(report.overall()),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_table(report: Report) -> str:
    """Plain-text tables (rich): one line per period, then totals per store and per branch."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    req = report.request
    scope = req.store or req.branch or "all branches"
    console.print(f"moodstream report — {scope}, {req.date_from} to {req.date_to}, per {req.by} (store time)")
    if not report.rows:
        console.print("no counts in this range")
        return console.export_text()
    headers = ["branch", "store", "period", "faces", *EMOTIONS, "satisfaction"]
    table = Table(*headers, title=f"per {req.by}")
    for row in report.rows:
        cells = _cells(row.branch, row.store_name, _period_label(row, req.by), row.counts)
        if row.suppressed:
            cells[3:] = [f"<{req.min_faces}", *("–" for _ in EMOTIONS), "suppressed"]
        table.add_row(*cells)
    console.print(table)
    hidden = sum(r.suppressed for r in report.rows)
    if hidden:
        console.print(f"{hidden} rows with fewer than {req.min_faces} faces suppressed (not in the totals)")
    totals = Table(*headers, title="totals")
    for (branch, _sid, name), counts in report.store_totals().items():
        totals.add_row(*_cells(branch, name, "range", counts))
    for (branch,), counts in report.branch_totals().items():
        totals.add_row(*_cells(branch, "(all stores)", "range", counts))
    console.print(totals)
    return console.export_text()


def _cells(branch: str, store: str, period: str, counts: Counts) -> list[str]:
    shares = counts.shares()
    emotion_cells = [f"{counts.count(e)} ({_fmt_share(shares[e])})" for e in EMOTIONS]
    return [branch, store, period, str(counts.faces), *emotion_cells, _fmt_index(counts.satisfaction_index)]


def _render_html(report: Report) -> str:
    from moodstream.aggregator.report_html import render_html

    return render_html(report)


RENDERERS: Final[dict[str, Callable[[Report], str]]] = {
    "table": render_table,
    "csv": render_csv,
    "json": render_json,
    "html": _render_html,
}
"""Output format name -> renderer (Report -> text)."""


def render(report: Report, fmt: str) -> str:
    """Render a report in one of :data:`RENDERERS`; ReportError for an unknown format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ReportError(f"unknown report format {fmt!r}; expected one of {', '.join(RENDERERS)}") from None
    return renderer(report)
