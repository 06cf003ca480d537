"""Text renderers of a satisfaction report: plain-text tables, CSV and JSON, plus the HTML renderer of
:mod:`moodstream.aggregator.report_html`, selected by format name (:data:`RENDERERS`, :func:`render`).

Each renderer takes a :class:`~moodstream.aggregator.report.Report` and returns the whole document as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Final

from moodstream.aggregator.report import Counts, Granularity, Report, ReportError, ReportRow, round_share
from moodstream.aggregator.report_format import fmt_index, fmt_share
from moodstream.aggregator.report_html import render_html
from moodstream.schemas.labels import EMOTIONS


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
        "shares": {e: round_share(s) for e, s in counts.shares().items()},
        "satisfaction_index": round_share(counts.satisfaction_index),
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
    emotion_cells = [f"{counts.count(e)} ({fmt_share(shares[e])})" for e in EMOTIONS]
    return [branch, store, period, str(counts.faces), *emotion_cells, fmt_index(counts.satisfaction_index)]


RENDERERS: Final[dict[str, Callable[[Report], str]]] = {
    "table": render_table,
    "csv": render_csv,
    "json": render_json,
    "html": render_html,
}
"""Output format name -> renderer (Report -> text)."""


def render(report: Report, fmt: str) -> str:
    """Render a report in one of :data:`RENDERERS`; ReportError for an unknown format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ReportError(f"unknown report format {fmt!r}; expected one of {', '.join(RENDERERS)}") from None
    return renderer(report)
