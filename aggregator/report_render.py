"""Text renderers of a satisfaction report: plain-text tables, CSV and JSON, plus the HTML renderer of
:mod:`moodstream.aggregator.report_html`, selected by format name (:data:`RENDERERS`, :func:`render`).

Each renderer takes a :class:`~moodstream.aggregator.report.Report` and returns the whole document as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from moodstream.aggregator.report import COUNT_KEYS, Counts, Granularity, Report, ReportError, ReportRow
from moodstream.aggregator.report_format import csv_text, fmt_index, fmt_seconds, fmt_share, plain_text
from moodstream.aggregator.report_html import render_html
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.tables import DWELL_COLUMNS

if TYPE_CHECKING:
    from rich.table import Table


def _period_label(row: ReportRow, by: Granularity) -> str:
    """Local period label; an hour that occurs twice (clocks went back) carries its UTC offset."""
    label = row.period_start.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00")
    if by == "hour" and row.ambiguous and row.utc_offset is not None:
        minutes = int(row.utc_offset.total_seconds()) // 60
        label += f" UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return label


def render_csv(report: Report) -> str:
    """One CSV line per (branch, store, period): visits (counts, shares, satisfaction per visit, dwell),
    then faces (counts, shares, satisfaction per face). Text cells (names) never start a formula and hold
    no control character (``csv_text``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*_ROW_KEYS, *COUNT_KEYS, "suppressed"], lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.as_dict().items()})
    return buf.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    return csv_text(value) if isinstance(value, str) else value


_ROW_KEYS: Final[tuple[str, ...]] = ("branch", "store_id", "store_name", "timezone", "period_start")


def _totals_dict(keys: Sequence[str], totals: dict[tuple[str, ...], Counts]) -> list[dict[str, object]]:
    return [{**dict(zip(keys, key, strict=True)), **counts.as_dict()} for key, counts in totals.items()]


def render_json(report: Report) -> str:
    """JSON document: the request, rows, per-store and per-branch totals, overall totals (each with the
    keys of ``Counts.as_dict``: visits first, then faces)."""
    req = report.request
    doc = {
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "request": {
            "branch": req.branch,
            "store": req.store,
            "from": req.date_from.isoformat(),
            "to": req.date_to.isoformat(),
            "by": req.by,
            "min_visits": req.min_visits,
        },
        "emotions": list(EMOTIONS),
        "dwell_bins": list(DWELL_COLUMNS),
        "rows": [row.as_dict() for row in report.rows],
        "stores": _totals_dict(("branch", "store_id", "store_name"), report.store_totals()),
        "branches": _totals_dict(("branch",), report.branch_totals()),
        "overall": report.overall().as_dict(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_VISIT_HEADERS: Final = ["visits", "readable", "dwell (mean)", *EMOTIONS, "satisfaction/visit"]
_FACE_HEADERS: Final = [
    "frames",
    "faces",
    "readable",
    "classified",
    *EMOTIONS,
    "satisfaction/face",
]


def render_table(report: Report) -> str:
    """Plain-text tables (rich): visits per period, then totals per store and branch; then the same for
    faces (secondary). Names are shown as written (no rich markup or emoji codes read in them), without
    control characters."""
    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        width=220,
        color_system=None,
        record=True,
        markup=False,
        emoji=False,
        highlight=False,
    )
    req = report.request
    scope = plain_text(req.store or req.branch or "all branches")
    console.print(f"moodstream report — {scope}, {req.date_from} to {req.date_to}, per {req.by} (store time)")
    if not report.rows:
        console.print("no counts in this range")
        return console.export_text()
    overall = report.overall()
    console.print(
        f"visitors {overall.visits} (readable {overall.readable_visits}), mean dwell "
        f"{fmt_seconds(overall.dwell_seconds_mean)}, satisfaction per visit "
        f"{fmt_index(overall.visit_satisfaction_index)}; faces {overall.faces}, satisfaction per face "
        f"{fmt_index(overall.face_satisfaction_index)}"
    )
    console.print(_period_table(report, f"visits per {req.by}", _VISIT_HEADERS, _visit_cells))
    hidden = sum(r.suppressed for r in report.rows)
    if hidden:
        console.print(f"{hidden} rows with fewer than {req.min_visits} visits suppressed (not in the totals)")
    console.print(_totals_table(report, "visits: totals", _VISIT_HEADERS, _visit_cells))
    console.print(_period_table(report, f"faces per {req.by} (secondary)", _FACE_HEADERS, _face_cells))
    console.print(_totals_table(report, "faces: totals", _FACE_HEADERS, _face_cells))
    return console.export_text()


CellsOf = Callable[[Counts], list[str]]


def _period_table(report: Report, title: str, headers: list[str], cells_of: CellsOf) -> Table:
    from rich.table import Table

    table = Table("branch", "store", "period", *headers, title=title)
    for row in report.rows:
        cells = cells_of(row.counts)
        if row.suppressed:  # the frames column (faces table) stays; the visits column says why
            first = cells[0] if headers[0] == "frames" else f"<{report.request.min_visits} visits"
            cells = [first, *("–" for _ in cells[1:-1]), "suppressed"]
        name = plain_text(row.store_name)
        table.add_row(plain_text(row.branch), name, _period_label(row, report.request.by), *cells)
    return table


def _totals_table(report: Report, title: str, headers: list[str], cells_of: CellsOf) -> Table:
    from rich.table import Table

    table = Table("branch", "store", "period", *headers, title=title)
    for (branch, _sid, name), counts in report.store_totals().items():
        table.add_row(plain_text(branch), plain_text(name), "range", *cells_of(counts))
    for (branch,), counts in report.branch_totals().items():
        table.add_row(plain_text(branch), "(all stores)", "range", *cells_of(counts))
    return table


def _emotion_cells(counts: tuple[int, ...], shares: dict[str, float | None]) -> list[str]:
    return [f"{n} ({fmt_share(shares[e])})" for e, n in zip(EMOTIONS, counts, strict=True)]


def _visit_cells(counts: Counts) -> list[str]:
    return [
        str(counts.visits),
        str(counts.readable_visits),
        fmt_seconds(counts.dwell_seconds_mean),
        *_emotion_cells(counts.visit_emotions, counts.visit_shares()),
        fmt_index(counts.visit_satisfaction_index),
    ]


def _face_cells(counts: Counts) -> list[str]:
    return [
        str(counts.frames),
        str(counts.faces),
        str(counts.readable_faces),
        str(counts.classified_faces),
        *_emotion_cells(counts.face_emotions, counts.face_shares()),
        fmt_index(counts.face_satisfaction_index),
    ]


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
