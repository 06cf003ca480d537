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


def _summary(report: Report) -> list[tuple[str, str, str, int, float | None, float | None]]:
    return [
        (
            r.store_id,
            r.period_start.isoformat(timespec="minutes"),
            r.timezone,
            r.counts.visits,
            r.counts.visit_satisfaction_index,
            r.counts.face_satisfaction_index,
        )
        for r in report.rows
    ]


def test_daily_report_uses_each_stores_local_day(conn: Connection) -> None:
    # local 2024-01-15: Trang Tien rows 1 (23:59 +07) and 3; Kim Ma row 4; SoHo row 5 (23:30 -05).
    # Trang Tien visits 5+4, readable 4+4: happy 3+2, sad 1, disgust 1 -> (5-2)/8;
    #   classified faces 10+8, happy 6+4, negative angry 1 + sad 1 + disgust 1 -> 7/18
    # Kim Ma: 2 visits, 1 readable (sad) -> -1; faces happy 2, sad 2 -> 0
    # SoHo: 3 readable visits, happy 2, angry 1 -> 1/3; faces 6, happy 3, angry 1 -> 2/6
    assert _summary(_report(conn)) == [
        ("hn-kimma", "2024-01-15T00:00", "Asia/Ho_Chi_Minh", 2, -1.0, 0.0),
        (
            "hn-trangtien",
            "2024-01-15T00:00",
            "Asia/Ho_Chi_Minh",
            9,
            pytest.approx(3 / 8),
            pytest.approx(7 / 18),
        ),
        ("ny-soho", "2024-01-15T00:00", "America/New_York", 3, pytest.approx(1 / 3), pytest.approx(2 / 6)),
    ]


def test_next_local_day_gets_the_rows_after_local_midnight(conn: Connection) -> None:
    # row 2 (00:00 +07): visits happy 1, fear 1 -> 0; faces happy 1, fear 2, surprise 2 -> (1-2)/5
    # row 6 (00:00 -05): one unreadable visit -> no index (not a negative one); faces happy 3 -> 1
    assert _summary(_report(conn, date_from=JAN16, date_to=JAN16)) == [
        ("hn-trangtien", "2024-01-16T00:00", "Asia/Ho_Chi_Minh", 3, 0.0, pytest.approx(-0.2)),
        ("ny-soho", "2024-01-16T00:00", "America/New_York", 1, None, 1.0),
    ]


def test_hourly_report_in_local_hours(conn: Connection) -> None:
    rows = _summary(_report(conn, by="hour"))
    assert rows == [
        ("hn-kimma", "2024-01-15T10:00", "Asia/Ho_Chi_Minh", 2, -1.0, 0.0),  # 03:10 UTC
        (
            "hn-trangtien",
            "2024-01-15T10:00",
            "Asia/Ho_Chi_Minh",
            4,
            pytest.approx(0.25),
            pytest.approx(3 / 8),
        ),
        ("hn-trangtien", "2024-01-15T23:00", "Asia/Ho_Chi_Minh", 5, pytest.approx(0.5), pytest.approx(0.4)),
        ("ny-soho", "2024-01-15T23:00", "America/New_York", 3, pytest.approx(1 / 3), pytest.approx(2 / 6)),
    ]


def test_daily_report_agrees_with_branch_daily_view(conn: Connection) -> None:
    report = _report(conn, date_from=JAN15, date_to=JAN16)
    view = conn.execute(
        text(
            "SELECT store_id, day, visits, visits_happy, dwell_seconds_mean, visit_satisfaction_index,"
            " faces, faces_happy, face_satisfaction_index"
            " FROM branch_daily_v WHERE day BETWEEN :a AND :b ORDER BY 1, 2"
        ),
        {"a": JAN15, "b": JAN16},
    ).all()
    mine = [
        (
            r.store_id,
            r.period_start.date(),
            r.counts.visits,
            r.counts.visit_count("happy"),
            pytest.approx(r.counts.dwell_seconds_mean),
            r.counts.visit_satisfaction_index,
            r.counts.faces,
            r.counts.face_count("happy"),
            r.counts.face_satisfaction_index,
        )
        for r in report.rows
    ]
    assert mine == [tuple(v) for v in view]


def test_branch_and_store_filters(conn: Connection) -> None:
    assert {r.store_id for r in _report(conn, branch="hanoi").rows} == {"hn-kimma", "hn-trangtien"}
    assert {r.store_id for r in _report(conn, store="ny-soho").rows} == {"ny-soho"}
    assert [r.store_id for r in _report(conn, branch="hanoi", store="hn-kimma").rows] == ["hn-kimma"]


def test_json_totals(conn: Connection) -> None:
    doc = json.loads(render(_report(conn), "json"))
    overall = doc["overall"]
    # visits 9+2+3 = 14, readable 8+1+3 = 12: happy 5+2 = 7, negative sad 1+1, disgust 1, angry 1 -> 3/12
    assert (overall["visits"], overall["readable_visits"]) == (14, 12)
    assert overall["visit_satisfaction_index"] == round(3 / 12, 4)
    # dwell 150+700 + 20 + 900 = 1770 s over 14 visits
    assert overall["dwell_seconds_mean"] == round(1770 / 14, 1) and overall["dwell_ge_600s"] == 1
    # classified faces: happy 10+2+3 = 15, negative 3+2+1 = 6, classified 18+4+6 = 28; detected 22+5+6
    assert (overall["faces"], overall["classified_faces"]) == (33, 28)
    assert overall["face_satisfaction_index"] == round(9 / 28, 4)
    hanoi = next(b for b in doc["branches"] if b["branch"] == "hanoi")
    assert (hanoi["visits"], hanoi["readable_visits"], hanoi["visits_happy"]) == (11, 9, 5)
    assert hanoi["visit_share_happy"] == round(5 / 9, 4)
    assert hanoi["classified_faces"] == 22 and hanoi["faces_happy"] == 12
    assert hanoi["face_share_happy"] == round(12 / 22, 4)
    keys = list(overall)
    assert keys.index("visit_satisfaction_index") < keys.index("faces")
    assert doc["request"] == {
        "branch": None,
        "store": None,
        "from": "2024-01-15",
        "to": "2024-01-15",
        "by": "day",
        "min_visits": 0,
    }


def test_csv_rows(conn: Connection) -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(conn, by="hour"), "csv"))))
    got = [(r["store_id"], r["period_start"], r["visits"], r["visits_happy"], r["faces_happy"]) for r in rows]
    assert got == [
        ("hn-kimma", "2024-01-15T10:00", "2", "0", "2"),
        ("hn-trangtien", "2024-01-15T10:00", "4", "2", "4"),
        ("hn-trangtien", "2024-01-15T23:00", "5", "3", "6"),
        ("ny-soho", "2024-01-15T23:00", "3", "2", "3"),
    ]
    counter = rows[1]  # row 3: 4 readable visits, neutral 1; 8 classified faces, neutral 3
    assert counter["visit_share_neutral"] == str(0.25) and counter["visit_satisfaction_index"] == str(0.25)
    assert counter["face_share_neutral"] == str(3 / 8) and counter["face_satisfaction_index"] == str(3 / 8)
    assert counter["dwell_seconds_mean"] == "175.0" and counter["dwell_120_600s"] == "3"
    header = list(rows[0])
    assert header.index("visits") < header.index("visit_satisfaction_index") < header.index("faces")


def test_table_and_empty_range(conn: Connection) -> None:
    out = render(_report(conn), "table")
    assert "Trang Tien" in out and "+0.375" in out and "+0.389" in out  # per visit, then per face
    assert out.index("visits per day") < out.index("faces per day (secondary)")
    assert "satisfaction per visit +0.250" in out
    empty = render(_report(conn, date_from=date(2023, 1, 1), date_to=date(2023, 1, 2)), "table")
    assert "no counts in this range" in empty


def test_an_unreadable_visit_shows_no_index_in_every_format(conn: Connection) -> None:
    soho = _report(conn, store="ny-soho", date_from=JAN16, date_to=JAN16)
    (row,) = soho.rows
    assert (row.counts.visits, row.counts.readable_visits, row.counts.visit_satisfaction_index) == (
        1,
        0,
        None,
    )
    assert json.loads(render(soho, "json"))["rows"][0]["visit_satisfaction_index"] is None
    (line,) = csv.DictReader(io.StringIO(render(soho, "csv")))
    assert line["visit_satisfaction_index"] == "" and line["face_satisfaction_index"] == "1.0"
    assert "satisfaction per visit –" in render(soho, "table")
    assert "Satisfaction per visit –" in render(soho, "html")


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
    assert json.loads(out)["overall"]["visits"] == 14


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
