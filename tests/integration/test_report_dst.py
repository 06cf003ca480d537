"""Hourly reports across a clock change: when clocks go back (Europe/Berlin, 2026-10-25 03:00 CEST ->
02:00 CET) the local hour 02:00 happens twice; the report keeps the two apart (grouped by the instant the
hour starts) and labels both in local time with their UTC offset. A half-hour zone (Asia/Kolkata) still
gets whole local hours."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Connection, create_engine, text

from moodstream.aggregator import ReportRequest, fetch_report, render
from moodstream.runtime.database import parse_database_url

OCT25 = date(2026, 10, 25)
BUCKETS = (
    # store, bucket_start UTC, frames   (local time)
    ("berlin", "2026-10-24T23:30", 1),  # 01:30 CEST (+02)
    ("berlin", "2026-10-25T00:10", 2),  # 02:10 CEST, the first 02:00 hour
    ("berlin", "2026-10-25T00:50", 4),  # 02:50 CEST
    ("berlin", "2026-10-25T01:20", 8),  # 02:20 CET (+01), the second 02:00 hour
    ("berlin", "2026-10-25T02:05", 16),  # 03:05 CET
    ("delhi", "2026-10-25T04:40", 32),  # 10:10 IST (+05:30)
    ("delhi", "2026-10-25T05:20", 64),  # 10:50 IST
)


@pytest.fixture
def conn(migrated_database_url: str) -> Iterator[Connection]:
    engine = create_engine(parse_database_url(migrated_database_url))
    try:
        with engine.connect() as connection:
            for store, zone in (("berlin", "Europe/Berlin"), ("delhi", "Asia/Kolkata")):
                connection.execute(
                    text("INSERT INTO stores (id, name, branch, timezone) VALUES (:i, :i, 'b', :t)"),
                    {"i": store, "t": zone},
                )
                connection.execute(
                    text(
                        "INSERT INTO cameras (store_id, id, name, source_redacted, fps) "
                        "VALUES (:s, 'door', 'door', 'videos/x.mp4', 2)"
                    ),
                    {"s": store},
                )
            for store, start, frames in BUCKETS:
                connection.execute(
                    text(
                        "INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, "
                        "frames) VALUES (:t, :s, 'door', 60, :f)"
                    ),
                    {"t": datetime.fromisoformat(start).replace(tzinfo=UTC), "s": store, "f": frames},
                )
            connection.commit()
            yield connection
    finally:
        engine.dispose()


def test_the_repeated_hour_is_two_rows_labelled_in_local_time_with_their_offsets(conn: Connection) -> None:
    report = fetch_report(conn, ReportRequest(date_from=OCT25, date_to=OCT25, by="hour"))
    got = [
        (r.store_id, r.period_start.strftime("%H:%M"), r.period_start.fold, r.utc_offset, r.counts.frames)
        for r in report.rows
    ]
    hours = timedelta(hours=1)
    assert got == [
        ("berlin", "01:00", 0, 2 * hours, 1),
        ("berlin", "02:00", 0, 2 * hours, 2 + 4),
        ("berlin", "02:00", 1, hours, 8),
        ("berlin", "03:00", 0, hours, 16),
        ("delhi", "10:00", 0, timedelta(hours=5, minutes=30), 32 + 64),
    ]
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert [r["period_start"] for r in rows] == [
        "2026-10-25T01:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
        "2026-10-25T03:00",
        "2026-10-25T10:00",
    ]
    table = render(report, "table")
    assert "2026-10-25 02:00 UTC+02:00" in table and "2026-10-25 02:00 UTC+01:00" in table


def test_the_day_of_the_clock_change_is_one_row(conn: Connection) -> None:
    report = fetch_report(conn, ReportRequest(date_from=OCT25, date_to=OCT25, by="day", store="berlin"))
    assert [(r.period_start, r.counts.frames) for r in report.rows] == [(datetime(2026, 10, 25), 31)]
