"""`moodstream report`: values and time-zone bucketing against seeded counts, and the CLI's bad input.

Seed: tests/integration/dashboard_seed.py (Hanoi stores at UTC+7, SoHo at UTC-5 in January); every
expected number is worked out by hand from its table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Connection, create_engine, text
from typer.testing import CliRunner

from moodstream.aggregator import (
    Report,
    ReportError,
    ReportRequest,
    UnknownScopeError,
    fetch_report,
    render,
)
from moodstream.cli.app import build_app
from moodstream.runtime.database import parse_database_url
from tests.integration import dashboard_seed

JAN15, JAN16 = date(2024, 1, 15), date(2024, 1, 16)


@pytest.fixture
def seeded_url(migrated_database_url: str) -> str:
    engine = create_engine(parse_database_url(migrated_database_url))
    try:
        with engine.begin() as conn:
            dashboard_seed.seed(conn)
    finally:
        engine.dispose()
    return migrated_database_url


@pytest.fixture
def conn(seeded_url: str) -> Iterator[Connection]:
    engine = create_engine(parse_database_url(seeded_url))
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _report(conn: Connection, **kw: object) -> Report:
    args: dict[str, object] = {"date_from": JAN15, "date_to": JAN15, "by": "day"} | kw
    return fetch_report(conn, ReportRequest.model_validate(args))


def _summary(report: Report) -> list[tuple[str, str, str, int, float | None]]:
    return [
        (
            r.store_id,
            r.period_start.isoformat(timespec="minutes"),
            r.timezone,
            r.counts.faces,
            r.counts.satisfaction_index,
        )
        for r in report.rows
    ]


def test_daily_report_uses_each_stores_local_day(conn: Connection) -> None:
    # local 2024-01-15: Trang Tien rows 1 (23:59 +07) and 3; Kim Ma row 4; SoHo row 5 (23:30 -05).
    # Trang Tien: faces 10+8, happy 6+4, negative angry 1 + sad 1 + disgust 1 -> 7/18
    assert _summary(_report(conn)) == [
        ("hn-kimma", "2024-01-15T00:00", "Asia/Ho_Chi_Minh", 4, 0.0),
        ("hn-trangtien", "2024-01-15T00:00", "Asia/Ho_Chi_Minh", 18, pytest.approx(7 / 18)),
        ("ny-soho", "2024-01-15T00:00", "America/New_York", 6, pytest.approx(2 / 6)),
    ]


def test_next_local_day_gets_the_rows_after_local_midnight(conn: Connection) -> None:
    # row 2 (00:00 +07, happy 1, fear 2, surprise 2 -> (1-2)/5) and row 6 (00:00 -05, happy 3 -> 1)
    assert _summary(_report(conn, date_from=JAN16, date_to=JAN16)) == [
        ("hn-trangtien", "2024-01-16T00:00", "Asia/Ho_Chi_Minh", 5, pytest.approx(-0.2)),
        ("ny-soho", "2024-01-16T00:00", "America/New_York", 3, 1.0),
    ]


def test_hourly_report_in_local_hours(conn: Connection) -> None:
    rows = _summary(_report(conn, by="hour"))
    assert rows == [
        ("hn-kimma", "2024-01-15T10:00", "Asia/Ho_Chi_Minh", 4, 0.0),  # 03:10 UTC
        ("hn-trangtien", "2024-01-15T10:00", "Asia/Ho_Chi_Minh", 8, pytest.approx(3 / 8)),  # 03:30 UTC
        ("hn-trangtien", "2024-01-15T23:00", "Asia/Ho_Chi_Minh", 10, pytest.approx(0.4)),  # 16:59 UTC
        ("ny-soho", "2024-01-15T23:00", "America/New_York", 6, pytest.approx(2 / 6)),  # 04:30 UTC next day
    ]


def test_daily_report_agrees_with_branch_daily_view(conn: Connection) -> None:
    report = _report(conn, date_from=JAN15, date_to=JAN16)
    view = conn.execute(
        text(
            "SELECT store_id, day, faces, happy FROM branch_daily_v WHERE day BETWEEN :a AND :b ORDER BY 1, 2"
        ),
        {"a": JAN15, "b": JAN16},
    ).all()
    mine = [(r.store_id, r.period_start.date(), r.counts.faces, r.counts.count("happy")) for r in report.rows]
    assert mine == [tuple(v) for v in view]


def test_branch_and_store_filters(conn: Connection) -> None:
    assert {r.store_id for r in _report(conn, branch="hanoi").rows} == {"hn-kimma", "hn-trangtien"}
    assert {r.store_id for r in _report(conn, store="ny-soho").rows} == {"ny-soho"}
    assert [r.store_id for r in _report(conn, branch="hanoi", store="hn-kimma").rows] == ["hn-kimma"]


def test_json_totals(conn: Connection) -> None:
    doc = json.loads(render(_report(conn), "json"))
    # happy 10+2+3 = 15, negative 3+2+1 = 6, faces 18+4+6 = 28
    assert doc["overall"]["faces"] == 28
    assert doc["overall"]["satisfaction_index"] == round(9 / 28, 4)
    hanoi = next(b for b in doc["branches"] if b["branch"] == "hanoi")
    assert hanoi["faces"] == 22 and hanoi["counts"]["happy"] == 12
    assert hanoi["shares"]["happy"] == round(12 / 22, 4)
    assert doc["request"] == {
        "branch": None,
        "store": None,
        "from": "2024-01-15",
        "to": "2024-01-15",
        "by": "day",
        "min_faces": 0,
    }


def test_csv_rows(conn: Connection) -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(conn, by="hour"), "csv"))))
    assert [(r["store_id"], r["period_start"], r["faces"], r["happy"]) for r in rows] == [
        ("hn-kimma", "2024-01-15T10:00", "4", "2"),
        ("hn-trangtien", "2024-01-15T10:00", "8", "4"),
        ("hn-trangtien", "2024-01-15T23:00", "10", "6"),
        ("ny-soho", "2024-01-15T23:00", "6", "3"),
    ]
    assert rows[1]["share_neutral"] == str(3 / 8) and rows[1]["satisfaction_index"] == str(3 / 8)


def test_table_and_empty_range(conn: Connection) -> None:
    out = render(_report(conn), "table")
    assert "Trang Tien" in out and "+0.389" in out
    empty = render(_report(conn, date_from=date(2023, 1, 1), date_to=date(2023, 1, 2)), "table")
    assert "no counts in this range" in empty


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"branch": "paris"}, UnknownScopeError, "unknown branch 'paris'"),
        ({"store": "nowhere"}, UnknownScopeError, "unknown store 'nowhere'"),
        ({"branch": "newyork", "store": "hn-kimma"}, UnknownScopeError, "belongs to branch 'hanoi'"),
    ],
)
def test_unknown_scope(
    conn: Connection, kwargs: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _report(conn, **kwargs)


def test_dates_the_wrong_way_round() -> None:
    with pytest.raises(ValueError, match="is after --to"):
        ReportRequest(date_from=JAN16, date_to=JAN15)
    assert issubclass(UnknownScopeError, ReportError)


# --- the command ------------------------------------------------------------------------------------------


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), args)
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_to_stdout(seeded_url: str) -> None:
    code, out, _ = _invoke(
        [
            "report",
            "--from",
            "2024-01-15",
            "--to",
            "2024-01-15",
            "--format",
            "json",
            "--database-url",
            seeded_url,
        ]
    )
    assert code == 0
    assert json.loads(out)["overall"]["faces"] == 28


def test_cli_reads_the_database_url_from_the_environment(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", seeded_url)
    code, out, _ = _invoke(["report", "--from", "2024-01-16", "--to", "2024-01-16", "--format", "csv"])
    assert code == 0 and out.count("\n") == 3  # header + Trang Tien + SoHo


BAD_INPUT = [
    (["--from", "2024-01-16", "--to", "2024-01-15"], "is after --to"),
    (["--from", "15/01/2024", "--to", "2024-01-15"], "not a date; expected YYYY-MM-DD"),
    (["--from", "2024-01-15", "--to", "2024-01-15", "--branch", "paris"], "unknown branch 'paris'"),
    (["--from", "2024-01-15", "--to", "2024-01-15", "--store", "nowhere"], "unknown store 'nowhere'"),
    (["--from", "2024-01-15", "--to", "2024-01-15", "--by", "week"], "--by 'week' is not valid"),
    (["--from", "2024-01-15", "--to", "2024-01-15", "--format", "pdf"], "--format 'pdf' is not valid"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_cli_bad_input(seeded_url: str, args: list[str], message: str) -> None:
    code, out, err = _invoke(["report", *args, "--database-url", seeded_url])
    assert code == 1
    assert message in err and "Traceback" not in err + out


def test_cli_unreachable_database_names_host_not_password() -> None:
    url = "postgresql://reader:s3cr%40t@127.0.0.1:1/moodstream"
    code, out, err = _invoke(["report", "--from", "2024-01-15", "--to", "2024-01-15", "--database-url", url])
    assert code == 1
    assert "127.0.0.1:1" in err and "s3cr" not in err + out and "Traceback" not in err + out


def test_cli_writes_html_file(seeded_url: str, tmp_path: object) -> None:
    out_file = f"{tmp_path}/report.html"
    code, _, err = _invoke(
        [
            "report",
            "--from",
            "2024-01-15",
            "--to",
            "2024-01-16",
            "--format",
            "html",
            "-o",
            out_file,
            "--database-url",
            seeded_url,
        ]
    )
    assert code == 0 and "report written" in err
    with open(out_file, encoding="utf-8") as fh:
        assert fh.read().startswith("<!DOCTYPE html>")
