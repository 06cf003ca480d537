"""Server time of the dashboards' queries on a store-year of counts (a benchmark, not a test).

Creates a scratch database on the given server, migrates it, fills ``emotion_counts`` with ``--stores`` x
``--cameras`` cameras x ``--days`` days of 60 s buckets, then runs every panel query of *Customer
satisfaction* for the last 24 hours of that range, as Grafana would send it, and prints PostgreSQL's own
execution time (``EXPLAIN ANALYZE``, so client and network are left out) for the panel as shipped
(``store_hours(from, to)``) and for the same panel on the view ``store_hourly_v`` filtered by hour. The
scratch database is dropped at the end. State the machine and its load beside the figures.

    python bench/bench_dashboard_queries.py postgresql://postgres@127.0.0.1:5432/postgres --days 90
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, create_engine, text

from moodstream.runtime.dashboards.build import SATISFACTION_UID, build_dashboards
from moodstream.runtime.dashboards.macros import ALL_VALUE, VariableValue, expand
from moodstream.runtime.dashboards.sql import ALL_SQL
from moodstream.runtime.database import migrate, parse_database_url

START = datetime(2025, 1, 1, tzinfo=UTC)
VIA_VIEW = """CREATE FUNCTION hours_via_view(range_from timestamptz, range_to timestamptz)
RETURNS SETOF store_hourly_v LANGUAGE sql STABLE
AS $$ SELECT * FROM store_hourly_v WHERE hour_start BETWEEN range_from AND range_to $$"""
"""The same rows as ``store_hours``, from the view (an inlined SQL function: the planner sees the view)."""


def fill(conn: Connection, stores: int, cameras: int, days: int) -> int:
    """Insert the synthetic stores, cameras and counts; returns the number of count rows."""
    conn.execute(
        text(
            "INSERT INTO stores (id, name, branch, timezone) "
            "SELECT 's' || i, 'Store ' || i, 'b' || (i % 3), 'Asia/Ho_Chi_Minh' FROM generate_series(1, :n) i"
        ),
        {"n": stores},
    )
    conn.execute(
        text(
            "INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, frames, visits, "
            "readable_visits, visits_happy, visits_sad, faces, readable_faces, faces_happy, faces_sad, "
            "dwell_seconds_sum, dwell_lt_10s) "
            "SELECT t, 's' || s, 'c' || c, 60, 120, 2, 2, 1, 1, 6, 5, 3, 2, 20, 2 "
            "FROM generate_series(CAST(:start AS timestamptz), "
            "CAST(:start AS timestamptz) + make_interval(days => :days) - interval '1 minute', "
            "interval '1 minute') t, generate_series(1, :stores) s, generate_series(1, :cameras) c"
        ),
        {"start": START, "days": days, "stores": stores, "cameras": cameras},
    )
    conn.execute(text("ANALYZE emotion_counts"))
    return int(conn.execute(text("SELECT count(*) FROM emotion_counts")).scalar_one())


def server_ms(conn: Connection, sql: str) -> float:
    """Execution time PostgreSQL reports for ``sql`` (best of three runs), milliseconds."""
    best = float("inf")
    for _ in range(3):
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
        best = min(best, float(plan[0]["Execution Time"]))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "admin_url", help="URL of a database on the server where a scratch one may be created"
    )
    parser.add_argument("--stores", type=int, default=1)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    admin = create_engine(parse_database_url(args.admin_url), isolation_level="AUTOCOMMIT")
    name = f"ms_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        engine = create_engine(parse_database_url(args.admin_url).set(database=name))
        migrate(engine)
        started = time.perf_counter()
        with engine.begin() as conn:
            rows = fill(conn, args.stores, args.cameras, args.days)
            conn.execute(text(VIA_VIEW))
        print(f"{rows:,} count rows ({args.stores} stores x {args.cameras} cameras x {args.days} days) "
              f"in {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        end = START + timedelta(days=args.days)
        scope = {v: VariableValue(ALL_VALUE, True, True, [], all_value=ALL_SQL) for v in ("branch", "store")}
        model = build_dashboards()[SATISFACTION_UID]
        print(f"{'panel (last 24 h)':<72} {'store_hours':>12} {'view':>12}")
        with engine.connect() as conn:
            for panel in model["panels"]:
                shipped = panel["targets"][0]["rawSql"]
                on_view = shipped.replace("store_hours(", "hours_via_view(")
                times = [
                    server_ms(conn, expand(sql, scope, end - timedelta(days=1), end, interval="1h"))
                    for sql in (shipped, on_view)
                ]
                print(f"{panel['title'][:72]:<72} {times[0]:>10.1f} ms {times[1]:>10.1f} ms")
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
