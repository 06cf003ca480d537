"""HTML rendering of a satisfaction report: one self-contained, printable file.

Charts are inline SVG drawn here (no script, no stylesheet or font fetched from anywhere), so the
file opens offline, prints as it shows, and renders with JavaScript disabled:

* emotion per visit over the whole range (one bar per emotion, readable visits);
* satisfaction per visit over time, one line per store (local periods on the x axis);
* dwell time of the visits (histogram);
* emotion mix per store (100 % stacked bars of readable visits);
* secondary: emotions of the classified faces (one bar per emotion).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Final

from moodstream.aggregator.report import Counts, Report, ReportRow
from moodstream.aggregator.report_format import fmt_index, fmt_seconds, fmt_share
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.tables import DWELL_COLUMNS, DWELL_LABELS

EMOTION_COLORS: Final[dict[str, str]] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    "neutral": "#7f7f7f",
}
"""One fixed colour per emotion (the same in every chart)."""

SERIES_COLORS: Final[tuple[str, ...]] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
"""Line colours of the satisfaction chart, cycled per store."""

_CSS: Final[str] = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; font-size: 13px; }
section { break-inside: avoid; page-break-inside: avoid; }
table { border-collapse: collapse; font-size: 12px; margin-top: 8px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
svg { max-width: 100%; height: auto; } svg text { font-size: 11px; fill: #333; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
@media print { body { margin: 10mm; } h2 { margin-top: 14px; } }
"""


def bar_chart(
    bars: Sequence[tuple[str, int, str, str]], chart_id: str, title: str, width: int = 640, height: int = 300
) -> str:
    """SVG bar chart of (label, count, caption above the bar, ``<rect>`` attributes) in the given order."""
    left, bottom, top = 50, 40, 20
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((n for _, n, _, _ in bars), default=0) or 1
    slot = plot_w / max(len(bars), 1)
    parts = [_axis_line(left, top + plot_h, left + plot_w, top + plot_h)]
    for i, (label, n, caption, attributes) in enumerate(bars):
        bar_h = plot_h * n / peak
        x = left + i * slot + slot * 0.15
        y = top + plot_h - bar_h
        parts.append(
            f'<rect {attributes} x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_h:.1f}"><title>{escape(label)}: {n}</title></rect>'
        )
        cx = left + (i + 0.5) * slot
        parts.append(f'<text x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle">{escape(caption)}</text>')
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle">{escape(label)}</text>'
        )
    return _svg(chart_id, width, height, title, parts)


def emotion_bar_chart(
    counts: Sequence[int], shares: dict[str, float | None], chart_id: str, title: str, css_class: str = "bar"
) -> str:
    """SVG bar chart: one bar per emotion (EMOTIONS order), labelled with count and share."""
    bars = [
        (
            e,
            n,
            f"{n} ({fmt_share(shares[e])})",
            f'class="{css_class}" data-emotion="{e}" fill="{EMOTION_COLORS[e]}"',
        )
        for e, n in zip(EMOTIONS, counts, strict=True)
    ]
    return bar_chart(bars, chart_id, title)


def dwell_chart(counts: Counts) -> str:
    """SVG histogram of the visits' dwell times (the ``tables.DWELL_BINS`` bins)."""
    bars = [
        (label, n, str(n), f'class="dwell" data-bin="{name}" fill="#4c78a8"')
        for name, label, n in zip(DWELL_COLUMNS, DWELL_LABELS, counts.dwell_bins, strict=True)
    ]
    return bar_chart(bars, "dwell-histogram", "Dwell time of the visits")


def satisfaction_line_chart(report: Report, width: int = 760, height: int = 300) -> str:
    """SVG line chart of the satisfaction per visit of each store over local periods; y axis [-1, 1]."""
    left, right, top, bottom = 50, 40, 15, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    periods = sorted({r.period_start for r in report.rows})
    index_of = {p: i for i, p in enumerate(periods)}
    step = plot_w / max(len(periods) - 1, 1)

    def xy(period: datetime, value: float) -> tuple[float, float]:
        x = left + (index_of[period] * step if len(periods) > 1 else plot_w / 2)
        return x, top + plot_h * (1 - value) / 2

    parts = []
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick) / 2
        style = "#999" if tick == 0 else "#e3e3e3"
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{style}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:+.1f}</text>')
    parts.extend(_period_ticks(periods, report.request.by, xy, top + plot_h + 16))
    for n, ((_branch, store_id, name), rows) in enumerate(_rows_by_store(report).items()):
        color = SERIES_COLORS[n % len(SERIES_COLORS)]
        points = [
            (xy(r.period_start, index), r)
            for r in rows
            if (index := r.counts.visit_satisfaction_index) is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for (x, y), _ in points)
        if len(points) > 1:
            parts.append(
                f'<polyline class="series" data-store="{escape(store_id)}" points="{path}" fill="none" '
                f'stroke="{color}" stroke-width="2"/>'
            )
        for (x, y), row in points:
            label = (
                f"{name} {row.period_start:%Y-%m-%d %H:%M}: {fmt_index(row.counts.visit_satisfaction_index)}"
            )
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(label)}</title></circle>"
            )
    return _svg("satisfaction-over-time", width, height, "Satisfaction per visit over time", parts)


def _period_ticks(
    periods: list[datetime], by: str, xy: Callable[[datetime, float], tuple[float, float]], y: float
) -> list[str]:
    if not periods:
        return []
    every = max(1, len(periods) // 8)
    fmt = "%m-%d" if by == "day" else "%m-%d %H:00"
    out = []
    for i in range(0, len(periods), every):
        x, _ = xy(periods[i], 0.0)
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{periods[i].strftime(fmt)}</text>')
    return out


def _rows_by_store(report: Report) -> dict[tuple[str, str, str], list[ReportRow]]:
    out: dict[tuple[str, str, str], list[ReportRow]] = {}
    for row in report.rows:
        out.setdefault((row.branch, row.store_id, row.store_name), []).append(row)
    return out


def store_mix_chart(report: Report, width: int = 760) -> str:
    """SVG 100 % stacked horizontal bars: emotion shares of each store's readable visits over the range."""
    totals = report.store_totals()
    left, bar_h, gap = 180, 18, 8
    plot_w = width - left - 10
    height = max(len(totals), 1) * (bar_h + gap) + 10
    parts = []
    for i, ((branch, _sid, name), counts) in enumerate(totals.items()):
        y = 5 + i * (bar_h + gap)
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(f"{name} ({branch})")}</text>'
        )
        x = float(left)
        for emotion, share in counts.visit_shares().items():
            w = plot_w * (share or 0.0)
            parts.append(
                f'<rect class="mix" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{EMOTION_COLORS[emotion]}">'
                f"<title>{escape(name)} {emotion}: {fmt_share(share)}</title></rect>"
            )
            x += w
    return _svg("store-mix", width, height, "Emotion per visit, per store", parts)


def _axis_line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#999"/>'


def _svg(chart_id: str, width: int, height: int, title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">\n'
        f"{body}\n</svg>"
    )


def _legend() -> str:
    items = "".join(f'<span><i style="background:{EMOTION_COLORS[e]}"></i>{e}</span>' for e in EMOTIONS)
    return f'<div class="legend">{items}</div>'


def _store_legend(report: Report) -> str:
    names = [name for (_b, _s, name) in _rows_by_store(report)]
    items = "".join(
        f'<span><i style="background:{SERIES_COLORS[n % len(SERIES_COLORS)]}"></i>{escape(name)}</span>'
        for n, name in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


_VISIT_HEAD: Final[str] = (
    "<th>visits</th><th>readable</th><th>dwell (mean)</th>"
    + "".join(f"<th>{e}</th>" for e in EMOTIONS)
    + "<th>satisfaction per visit</th><th>faces</th><th>classified</th><th>satisfaction per face</th>"
)


def _visit_cells(counts: Counts) -> str:
    shares = counts.visit_shares()
    emotions = "".join(f"<td>{counts.visit_count(e)}<br>{fmt_share(shares[e])}</td>" for e in EMOTIONS)
    return (
        f"<td>{counts.visits}</td><td>{counts.readable_visits}</td>"
        f"<td>{fmt_seconds(counts.dwell_seconds_mean)}</td>{emotions}"
        f"<td><b>{fmt_index(counts.visit_satisfaction_index)}</b></td><td>{counts.faces}</td>"
        f"<td>{counts.classified_faces}</td><td>{fmt_index(counts.face_satisfaction_index)}</td>"
    )


def _totals_table(
    first_header: str, totals: dict[tuple[str, ...], Counts], label_of: Callable[[tuple[str, ...]], str]
) -> str:
    lines = [f'<table><tr><th class="l">{first_header}</th>{_VISIT_HEAD}</tr>']
    for key, counts in totals.items():
        lines.append(f'<tr><td class="l">{escape(label_of(key))}</td>{_visit_cells(counts)}</tr>')
    lines.append("</table>")
    return "\n".join(lines)


def _period_table(report: Report) -> str:
    fmt = "%Y-%m-%d" if report.request.by == "day" else "%Y-%m-%d %H:00"
    lines = [
        '<table><tr><th class="l">branch</th><th class="l">store</th><th class="l">period (store time)</th>'
        f"<th>frames</th>{_VISIT_HEAD}</tr>"
    ]
    width = _VISIT_HEAD.count("<th>")
    for r in report.rows:
        if r.suppressed:
            hidden = f"<td>&lt;{report.request.min_visits}</td>" + "<td>–</td>" * (width - 2)
            cells = f"{hidden}<td>suppressed</td>"
        else:
            cells = _visit_cells(r.counts)
        lines.append(
            f'<tr><td class="l">{escape(r.branch)}</td><td class="l">{escape(r.store_name)}</td>'
            f'<td class="l">{r.period_start.strftime(fmt)}</td><td>{r.counts.frames}</td>{cells}</tr>'
        )
    lines.append("</table>")
    return "\n".join(lines)


def _charts(report: Report) -> str:
    req = report.request
    overall = report.overall()
    visits = emotion_bar_chart(
        overall.visit_emotions, overall.visit_shares(), "visit-emotions", "Emotion per visit"
    )
    faces = emotion_bar_chart(
        overall.face_emotions,
        overall.face_shares(),
        "face-emotions",
        "Emotion per classified face",
        "bar face",
    )
    return (
        f"<section><h2>Emotion per visit (readable visits)</h2>{visits}</section>\n"
        f"<section><h2>Satisfaction per visit over time (per {req.by}, store time)</h2>"
        f"{_store_legend(report)}{satisfaction_line_chart(report)}</section>\n"
        f"<section><h2>Dwell time</h2>{dwell_chart(overall)}</section>\n"
        f"<section><h2>Emotion per visit, per store</h2>{_legend()}{store_mix_chart(report)}</section>\n"
        "<section><h2>Totals per branch</h2>"
        f"{_totals_table('branch', report.branch_totals(), lambda k: k[0])}</section>\n"
        "<section><h2>Totals per store</h2>"
        f"{_totals_table('store', report.store_totals(), lambda k: f'{k[2]} ({k[0]})')}</section>\n"
        f"<section><h2>Per {req.by}</h2>{_period_table(report)}</section>\n"
        "<section><h2>Faces (secondary): emotion per classified face</h2>"
        f'<p class="meta">Every readable face classified, however long its visit: people who linger '
        f"weigh more here than in the per-visit figures above.</p>{faces}</section>"
    )


def render_html(report: Report) -> str:
    """The whole report as one HTML document (str), with inline CSS and SVG only."""
    req = report.request
    scope = f"store {req.store}" if req.store else f"branch {req.branch}" if req.branch else "all branches"
    overall = report.overall()
    title = f"Customer satisfaction — {scope}, {req.date_from} to {req.date_to}"
    charts = _charts(report) if report.rows else "<p>No counts in this range.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="meta"><b>Satisfaction per visit {fmt_index(overall.visit_satisfaction_index)}</b>
(happy − (angry + disgust + fear + sad)) / readable visits, in [−1, 1] · visitors: {overall.visits}
(readable: {overall.readable_visits}) · mean dwell {fmt_seconds(overall.dwell_seconds_mean)}
· faces seen: {overall.faces}, classified: {overall.classified_faces}, satisfaction per face
{fmt_index(overall.face_satisfaction_index)} · frames analysed: {overall.frames}
· generated {report.generated_at:%Y-%m-%d %H:%M %Z} by moodstream</p>
{charts}
</body></html>
"""
