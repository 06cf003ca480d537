"""Every dashboard query, expanded as Grafana's PostgreSQL datasource expands it, run as the read-only role.

Counts come from tests/integration/dashboard_seed.py; every expected number below is worked out by hand
from its table (the arithmetic is in the comments).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text

from moodstream.runtime.dashboards.macros import ALL_VALUE, VariableValue, expand
from moodstream.runtime.dashboards.sql import ALL_SQL
from moodstream.runtime.database import create_reader_role, parse_database_url
from tests.integration import dashboard_seed

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
READER = "moodstream_reader"
BRANCHES = ["hanoi", "newyork"]
STORES = ["hn-kimma", "hn-trangtien", "ny-soho"]
CAMERAS = ["backdoor", "counter", "door", "entrance"]
RANGE = (datetime(2024, 1, 15, 0, 0, tzinfo=UTC), datetime(2024, 1, 16, 6, 0, tzinfo=UTC))
DAY_15, DAY_16 = 1705276800, 1705363200  # epoch seconds of 2024-01-15 / 2024-01-16 00:00 UTC


def _dashboard(uid: str) -> dict[str, Any]:
    return dict(json.loads((DASHBOARD_DIR / f"{uid}.json").read_text(encoding="utf-8")))


def _panel_sql(uid: str, title: str) -> str:
    for panel in _dashboard(uid)["panels"]:
        if panel["title"] == title:
            return str(panel["targets"][0]["rawSql"])
    raise AssertionError(f"no panel {title!r} in {uid}")


def _variable_sql(uid: str, name: str) -> str:
    return next(str(v["query"]) for v in _dashboard(uid)["templating"]["list"] if v["name"] == name)


def _all(options: list[str]) -> VariableValue:
    return VariableValue(ALL_VALUE, multi=True, include_all=True, options=options, all_value=ALL_SQL)


def _pick(*values: str) -> VariableValue:
    return VariableValue(list(values), multi=True, include_all=True, all_value=ALL_SQL)


ALL_SELECTED = {
    "branch": _all(BRANCHES),
    "store": _all(STORES),
    "camera": _all(CAMERAS),
    "silent_minutes": VariableValue("15"),
}


@pytest.fixture
def reader(migrated_database_url: str) -> Iterator[Connection]:
    """A connection to the seeded database with the privileges of a read-only role only.

    The role is granted exactly what ``moodstream db create-reader`` grants; it has a name of its own
    per test (roles are server-wide) and is dropped afterwards.
    """
    role = f"{READER}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(parse_database_url(migrated_database_url))
    try:
        with engine.begin() as conn:
            dashboard_seed.seed(conn)
        create_reader_role(engine, role, None)
        with engine.connect() as conn:
            conn.execute(text(f"SET ROLE {role}"))
            assert conn.execute(text("SELECT current_user")).scalar_one() == role
            yield conn
            conn.rollback()
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
    finally:
        engine.dispose()


def run(
    conn: Connection,
    sql: str,
    variables: dict[str, VariableValue] | None = None,
    interval: str = "1d",
    time_range: tuple[datetime, datetime] = RANGE,
) -> list[dict[str, Any]]:
    expanded = expand(sql, {**ALL_SELECTED, **(variables or {})}, *time_range, interval=interval)
    return [dict(r._mapping) for r in conn.execute(text(expanded))]


SAT = "moodstream-satisfaction"
HEALTH = "moodstream-camera-health"

VISITORS = "Visitors, satisfaction per visit and dwell (whole range)"
RANKING = "Stores ranked by satisfaction per visit (whole range)"
SATISFACTION_OVER_TIME = "Satisfaction per visit per store (hourly or wider windows)"
MIX = "Emotion mix of readable visits (share, hourly or wider windows)"


def test_visitors_satisfaction_per_visit_and_dwell(reader: Connection) -> None:
    (row,) = run(reader, _panel_sql(SAT, VISITORS))
    # visits 5+3+4+2+3+1 = 18, readable 4+2+4+1+3+0 = 14
    # per visit: happy 3+1+2+2 = 8; negative angry 1 + disgust 1 + fear 1 + sad 1+1 = 5 -> 3/14
    # dwell 150+45+700+20+900+4 = 1819 s over 18 visits
    assert row == {
        "visitors": 18,
        "readable": 14,
        "satisfaction": pytest.approx(3 / 14),
        "dwell_mean": pytest.approx(1819 / 18),
    }


def test_visits_per_emotion_in_label_order(reader: Connection) -> None:
    rows = run(reader, _panel_sql(SAT, "Visits per emotion (readable visits over the range)"))
    expected = [
        ("angry", 1),
        ("disgust", 1),
        ("fear", 1),
        ("happy", 8),
        ("sad", 2),
        ("surprise", 0),
        ("neutral", 1),
    ]
    assert [(r["emotion"], r["visits"]) for r in rows] == expected


def test_dwell_histogram_lists_every_bin(reader: Connection) -> None:
    sql = _panel_sql(SAT, "Dwell time of visits (visits over the range)")
    rows = run(reader, sql)
    # bins summed column by column from the seed's visits table
    assert [(r["dwell"], r["visits"]) for r in rows] == [
        ("< 10 s", 4),
        ("10-30 s", 4),
        ("30-120 s", 5),
        ("120-600 s", 4),
        (">= 600 s", 1),
    ]
    window = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    assert [r["visits"] for r in run(reader, sql, time_range=window)] == [0] * 5


def test_store_ranking_per_visit(reader: Connection) -> None:
    rows = run(reader, _panel_sql(SAT, RANKING))
    # SoHo: 4 visits, readable 3: happy 2, angry 1 -> 1/3; dwell 904/4; faces 5/9
    # Trang Tien: 12 visits, readable 10: happy 6, sad 1, fear 1, disgust 1 -> 3/10; faces 6/23
    # Kim Ma: 2 visits, readable 1: sad -> -1; faces 0
    assert [(r["store_id"], r["visits"], r["readable"], r["suppressed_hours"]) for r in rows] == [
        ("ny-soho", 4, 3, 0),
        ("hn-trangtien", 12, 10, 0),
        ("hn-kimma", 2, 1, 0),
    ]
    assert [r["satisfaction"] for r in rows] == [pytest.approx(1 / 3), pytest.approx(0.3), -1.0]
    assert [r["satisfaction_per_face"] for r in rows] == [pytest.approx(5 / 9), pytest.approx(6 / 23), 0.0]
    assert rows[0]["happy_share"] == pytest.approx(2 / 3) and rows[0]["dwell_mean"] == pytest.approx(226.0)


def test_satisfaction_per_visit_per_store_id_and_day(reader: Connection) -> None:
    rows = run(reader, _panel_sql(SAT, SATISFACTION_OVER_TIME), interval="1d")
    got = [(r["time"], r["metric"], r["satisfaction"]) for r in rows]
    assert got == [
        (DAY_15, "hn-kimma", -1.0),
        (DAY_15, "hn-trangtien", pytest.approx(0.3)),
        (DAY_16, "ny-soho", pytest.approx(1 / 3)),
    ]


def _as_owner(conn: Connection, statement: str) -> None:
    """Run ``statement`` as the session's owner (the seed's writer), then be the reader again."""
    role = conn.execute(text("SELECT current_user")).scalar_one()
    conn.execute(text("RESET ROLE"))
    conn.execute(text(statement))
    conn.execute(text(f"SET ROLE {role}"))


def test_two_stores_with_one_name_stay_two_series(reader: Connection) -> None:
    _as_owner(reader, "UPDATE stores SET name = 'Trang Tien' WHERE id = 'hn-kimma'")
    rows = run(reader, _panel_sql(SAT, SATISFACTION_OVER_TIME), interval="1d")
    assert {r["metric"] for r in rows if r["time"] == DAY_15} == {"hn-kimma", "hn-trangtien"}


def test_visitors_per_store_local_hour(reader: Connection) -> None:
    sql = _panel_sql(SAT, "Visitors per store-local hour (sum per hour)")
    expected = [
        (DAY_15 + 3 * 3600, "hn-kimma", 2),
        (DAY_15 + 3 * 3600, "hn-trangtien", 4),
        (DAY_15 + 16 * 3600, "hn-trangtien", 5),
        (DAY_15 + 17 * 3600, "hn-trangtien", 3),
        (DAY_16 + 4 * 3600, "ny-soho", 3),
        (DAY_16 + 5 * 3600, "ny-soho", 1),
    ]
    for interval in ("5m", "1h", "1d"):  # hourly whatever the zoom
        rows = run(reader, sql, interval=interval)
        assert [(int(r["time"].timestamp()), r["metric"], r["visitors"]) for r in rows] == expected


def test_store_local_hours_follow_half_hour_offsets(reader: Connection) -> None:
    _as_owner(reader, "UPDATE stores SET timezone = 'Asia/Kolkata' WHERE id = 'hn-kimma'")  # +05:30
    sql = _panel_sql(SAT, "Visitors per store-local hour (sum per hour)")
    rows = run(reader, sql, {"store": _pick("hn-kimma")})
    # bucket 03:10 UTC is 08:40 in Kolkata: the local hour 08:00-09:00 starts at 02:30 UTC
    assert [(int(r["time"].timestamp()), r["visitors"]) for r in rows] == [(DAY_15 + 2 * 3600 + 1800, 2)]


def test_emotion_mix_is_shares_of_readable_visits(reader: Connection) -> None:
    rows = run(reader, _panel_sql(SAT, MIX), interval="1h")
    # windows 03:00, 16:00, 17:00 on the 15th and 04:00, 05:00 on the 16th (UTC)
    assert [r["time"] for r in rows] == [DAY_15 + h * 3600 for h in (3, 16, 17)] + [
        DAY_16 + 4 * 3600,
        DAY_16 + 5 * 3600,
    ]
    # 03:00 = seed rows 3 + 4: 5 readable visits: happy 2, disgust 1, neutral 1 and sad 1
    first = {k: v for k, v in rows[0].items() if k != "time"}
    assert first == {
        "angry": 0.0,
        "disgust": 0.2,
        "fear": 0.0,
        "happy": 0.4,
        "sad": 0.2,
        "surprise": 0.0,
        "neutral": 0.2,
    }
    assert all(v is None for k, v in rows[-1].items() if k != "time")  # 05:00: one unreadable visit
    for row in rows[:-1]:
        assert sum(v for k, v in row.items() if k != "time") == pytest.approx(1.0)


def test_daily_trade_in_store_local_days(reader: Connection) -> None:
    rows = run(reader, _panel_sql(SAT, "Daily trade per store (store-local days)"))
    got = [(r["day"], r["store_id"], r["visits"], r["readable"], r["satisfaction"]) for r in rows]
    # Trang Tien (+07): rows 1 (23:59 on the 15th) and 3 on the 15th, row 2 (00:00) on the 16th
    # SoHo (-05): row 5 is 23:30 on the 15th, row 6 00:00 on the 16th
    assert got == [
        ("2024-01-16", "hn-trangtien", 3, 2, 0.0),
        ("2024-01-16", "ny-soho", 1, 0, None),
        ("2024-01-15", "hn-kimma", 2, 1, -1.0),
        ("2024-01-15", "hn-trangtien", 9, 8, pytest.approx(3 / 8)),
        ("2024-01-15", "ny-soho", 3, 3, pytest.approx(1 / 3)),
    ]


def test_store_selection(reader: Connection) -> None:
    (row,) = run(reader, _panel_sql(SAT, VISITORS), {"store": _pick("hn-trangtien")})
    # seed rows 1 + 2 + 3: visits 12, readable 10: happy 6, sad 1, fear 1, disgust 1 -> 3/10; dwell 895/12
    assert row == {
        "visitors": 12,
        "readable": 10,
        "satisfaction": pytest.approx(0.3),
        "dwell_mean": pytest.approx(895 / 12),
    }
    (none,) = run(reader, _panel_sql(SAT, VISITORS), {"store": _pick()})  # nothing selected: no row counted
    assert none["visitors"] == 0


def test_time_filter_narrows_the_range(reader: Connection) -> None:
    window = (datetime(2024, 1, 15, 3, 0, tzinfo=UTC), datetime(2024, 1, 15, 4, 0, tzinfo=UTC))
    (row,) = run(reader, _panel_sql(SAT, VISITORS), time_range=window)
    # seed rows 3 + 4: visits 6, readable 5: happy 2, disgust 1, sad 1 -> 0; dwell 720/6
    assert row == {"visitors": 6, "readable": 5, "satisfaction": 0.0, "dwell_mean": 120.0}


def test_empty_selection_range_gives_zero_and_null(reader: Connection) -> None:
    window = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))
    (row,) = run(reader, _panel_sql(SAT, VISITORS), time_range=window)
    assert row == {"visitors": 0, "readable": 0, "satisfaction": None, "dwell_mean": None}


def test_unreadable_visits_give_no_index_not_a_negative_one(reader: Connection) -> None:
    window = (datetime(2024, 1, 16, 5, 0, tzinfo=UTC), datetime(2024, 1, 16, 5, 30, tzinfo=UTC))
    (row,) = run(reader, _panel_sql(SAT, VISITORS), {"store": _pick("ny-soho")}, time_range=window)
    assert (row["visitors"], row["readable"], row["satisfaction"]) == (1, 0, None)  # seed row 6


FACES_STAT = "Faces (secondary): faces and frames analysed (whole range)"


def test_faces_secondary_panels(reader: Connection) -> None:
    (row,) = run(reader, _panel_sql(SAT, FACES_STAT))
    # detected 14+7+8+5+6+4 = 44, readable 12+5+8+4+6+3 = 38, classified 10+5+8+4+6+3 = 36, frames 70
    # per classified face: happy 19; negative angry 2 + disgust 1 + fear 2 + sad 3 = 8 -> (19-8)/36
    assert row == {
        "faces": 44,
        "readable": 38,
        "classified": 36,
        "frames": 70,
        "satisfaction": pytest.approx(11 / 36),
    }
    rows = run(reader, _panel_sql(SAT, "Faces (secondary): classified faces per emotion (over the range)"))
    expected = [
        ("angry", 2),
        ("disgust", 1),
        ("fear", 2),
        ("happy", 19),
        ("sad", 3),
        ("surprise", 2),
        ("neutral", 7),
    ]
    assert [(r["emotion"], r["faces"]) for r in rows] == expected
    title = "Faces (secondary): satisfaction per face per store (hourly or wider windows)"
    over_time = run(reader, _panel_sql(SAT, title))
    assert [(r["time"], r["metric"], r["satisfaction"]) for r in over_time] == [
        (DAY_15, "hn-kimma", 0.0),
        (DAY_15, "hn-trangtien", pytest.approx(6 / 23)),
        (DAY_16, "ny-soho", pytest.approx(5 / 9)),
    ]


def test_variable_chain(reader: Connection) -> None:
    branches = run(reader, _variable_sql(SAT, "branch"))
    assert [r["branch"] for r in branches] == BRANCHES
    stores = run(reader, _variable_sql(SAT, "store"), {"branch": _pick("hanoi")})
    assert [(r["__value"], r["__text"]) for r in stores] == [
        ("hn-kimma", "Kim Ma (hn-kimma)"),
        ("hn-trangtien", "Trang Tien (hn-trangtien)"),
    ]
    cameras = run(reader, _variable_sql(HEALTH, "camera"), {"store": _pick("hn-kimma")})
    assert [r["__value"] for r in cameras] == ["hn-kimma/backdoor", "hn-kimma/entrance"]
    every = run(reader, _variable_sql(HEALTH, "camera"))
    assert len(every) == 5 and len({r["__value"] for r in every}) == 5  # "entrance" twice, two values


def test_camera_selection_is_store_qualified(reader: Connection) -> None:
    sql = _panel_sql(HEALTH, "Last frame seen per camera")
    rows = run(reader, sql, {"camera": _pick("hn-kimma/entrance")})
    assert [(r["store_id"], r["camera_id"]) for r in rows] == [("hn-kimma", "entrance")]
    assert run(reader, sql, {"camera": _pick()}) == []  # a store without cameras: nothing, no IN ()


def test_frames_per_minute_do_not_change_with_the_zoom(reader: Connection) -> None:
    sql = _panel_sql(HEALTH, "Frames analysed per camera (frames per minute)")
    # 60 s buckets: a bucket's frames per minute is its frame count, in windows of 30 s or 1 min
    for interval in ("30s", "1m"):
        rows = run(reader, sql, interval=interval)
        assert [(r["metric"], r["frames_per_minute"]) for r in rows][:3] == [
            ("hn-kimma/entrance", 6.0),
            ("hn-trangtien/counter", 20.0),
            ("hn-trangtien/entrance", 10.0),
        ], interval
    hourly = run(reader, sql, interval="1h")
    # 16:00-17:00: 10 frames of hn-trangtien/entrance over 60 minutes
    assert (DAY_15 + 16 * 3600, "hn-trangtien/entrance", pytest.approx(10 / 60)) in [
        (r["time"], r["metric"], r["frames_per_minute"]) for r in hourly
    ]


def test_last_frame_seen(reader: Connection) -> None:
    rows = run(reader, _panel_sql(HEALTH, "Last frame seen per camera"))
    # last_frame_at = bucket_start + 59 s; silence measured to the end of the range, 2024-01-16 06:00
    assert [(r["store_id"], r["camera_id"], r["silent_seconds"]) for r in rows] == [
        ("hn-kimma", "backdoor", None),
        ("hn-kimma", "entrance", 26 * 3600 + 49 * 60 + 1),  # from 01-15 03:10:59
        ("hn-trangtien", "counter", 26 * 3600 + 29 * 60 + 1),  # from 01-15 03:30:59
        ("hn-trangtien", "entrance", 13 * 3600 - 59),  # from 01-15 17:00:59
        ("ny-soho", "door", 3600 - 59),  # from 01-16 05:00:59
    ]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (
            "15",
            [
                "hn-kimma/backdoor",
                "hn-kimma/entrance",
                "hn-trangtien/counter",
                "hn-trangtien/entrance",
                "ny-soho/door",
            ],
        ),
        ("60", ["hn-kimma/backdoor", "hn-kimma/entrance", "hn-trangtien/counter", "hn-trangtien/entrance"]),
    ],
)
def test_silent_cameras(reader: Connection, minutes: str, expected: list[str]) -> None:
    variables = {"silent_minutes": VariableValue(minutes)}
    rows = run(reader, _panel_sql(HEALTH, "Cameras silent longer than $silent_minutes min"), variables)
    assert [f"{r['store_id']}/{r['camera_id']}" for r in rows] == expected


def test_frame_losses(reader: Connection) -> None:
    (total,) = run(reader, _panel_sql(HEALTH, "Frames lost (whole range)"))
    assert total == {"shed": 5, "dead": 1}  # 3+2 shed, 1+0 dead
    (only_soho,) = run(reader, _panel_sql(HEALTH, "Frames lost (whole range)"), {"store": _pick("ny-soho")})
    assert only_soho == {"shed": 2, "dead": 0}
    sql = _panel_sql(HEALTH, "Frames shed and sent to dead letter (sum per hour)")
    for interval in ("1m", "1d"):  # per hour whatever the zoom
        series = run(reader, sql, interval=interval)
        assert [(r["time"], r["shed"], r["dead"]) for r in series] == [
            (DAY_15 + 17 * 3600, 3, 1),
            (DAY_16 + 4 * 3600, 2, 0),
        ]


def test_every_panel_runs_as_the_reader(reader: Connection) -> None:
    for uid in (SAT, HEALTH):
        for panel in _dashboard(uid)["panels"]:
            for target in panel["targets"]:
                run(reader, target["rawSql"], interval="5m")
