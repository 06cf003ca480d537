"""Report output with hostile store and branch names: rich markup is shown as written, control characters
never reach the terminal, and no CSV cell starts a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest

from moodstream.aggregator import Counts, Report, ReportRequest, ReportRow, render

COUNTS = Counts(frames=12, visits=3, readable_visits=3, visit_emotions=(2, 0, 0, 1, 0, 0, 0))
"""Two angry visits and one happy: satisfaction per visit -1/3 (a number that starts with '-')."""

CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters other than the newline, and bidirectional overrides."""

NAMES = {
    # case: (store name, what the table shows of it)
    "closing markup tag": ("[/x]", "[/x]"),
    "markup that would style": ("[bold red]Hanoi[/]", "[bold red]Hanoi[/]"),
    "emoji code": ("Shop :smile:", "Shop :smile:"),
    "escape sequence and bell": ("evil\x1b[2J\x1b]0;title\x07shop", "evil[2J]0;titleshop"),
    "carriage return overwrite": ("Real\rFake", "RealFake"),
    "bidirectional override": ("abc\u202edcba", "abcdcba"),
    "spreadsheet formula": ('=HYPERLINK("http://x.test","y")', '=HYPERLINK("http://x.test","y")'),
}


def report_of(name: str, branch: str = "north") -> Report:
    row = ReportRow(branch, "s1", name, "UTC", datetime(2024, 1, 15, tzinfo=UTC), COUNTS)
    request = ReportRequest.model_validate({"date_from": date(2024, 1, 15), "date_to": date(2024, 1, 15)})
    return Report(request, (row,), generated_at=datetime(2024, 1, 16, tzinfo=UTC))


@pytest.mark.parametrize(("name", "shown"), NAMES.values(), ids=NAMES.keys())
def test_table_shows_names_as_written_without_control_characters(name: str, shown: str) -> None:
    out = render(report_of(name, branch=name), "table")
    assert not CONTROL.search(out), repr(out[:300])
    assert shown in out


FORMULAS = {
    "equals": ('=HYPERLINK("http://x.test","y")', '\'=HYPERLINK("http://x.test","y")'),
    "plus": ("+1+2", "'+1+2"),
    "minus": ("-2+3", "'-2+3"),
    "at": ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    "tab first": ("\t=1+1", "'=1+1"),
    "control then formula": ("\x1b=1+1", "'=1+1"),
    "plain name": ("Trang Tien", "Trang Tien"),
}


@pytest.mark.parametrize(("name", "cell"), FORMULAS.values(), ids=FORMULAS.keys())
def test_csv_text_cells_never_start_a_formula_and_numbers_stay_numbers(name: str, cell: str) -> None:
    out = render(report_of(name, branch=name), "csv")
    assert not CONTROL.search(out.replace("\n", ""))
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["store_name"] == cell and row["branch"] == cell
    assert row["visit_satisfaction_index"].startswith("-0.33")  # a negative number is not neutralised
