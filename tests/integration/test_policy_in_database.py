"""Policy in the database, not in panels (issue 13 items 10 and 11), on real PostgreSQL.

* The read-only role (logged in with its password, as Grafana does) reads emotions only through views that
  suppress store-local hours with fewer visits than ``privacy_settings.min_visits``, which only the
  writer may change; it cannot SELECT the raw counts; it has a statement timeout and a connection limit.
* Every panel and variable query of both committed dashboards, expanded as Grafana expands it, runs
  with hostile values in every variable without running any SQL of theirs.

Counts come from tests/integration/dashboard_seed.py (hourly visits: Kim Ma 03:00 2; Trang Tien 03:00 4,
16:00 5, 17:00 3; SoHo 04:00 3, 05:00 1 (UTC, 2024-01-15/16)).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from moodstream.runtime.dashboards.macros import ALL_VALUE, VariableValue, expand
from moodstream.runtime.dashboards.sql import ALL_SQL
from moodstream.runtime.database import (
    READER_CONNECTION_LIMIT,
    DatabaseError,
    create_database_engine,
    create_reader_role,
    get_min_visits,
    parse_database_url,
    set_min_visits,
)
from tests.integration import dashboard_seed
from tests.integration.helpers import drop_role, refused

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
RANGE = (datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 16, 6, tzinfo=UTC))
PASSWORD = "pw-for-test"


@pytest.fixture
def writer(migrated_database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(migrated_database_url)
    with engine.begin() as conn:
        dashboard_seed.seed(conn)
    yield engine
    engine.dispose()


@pytest.fixture
def reader_role(writer: Engine) -> Iterator[str]:
    role = f"ms_reader_{uuid.uuid4().hex[:10]}"
    create_reader_role(writer, role, password=PASSWORD)
    yield role
    drop_role(writer, role)


@pytest.fixture
def reader(reader_role: str, migrated_database_url: str) -> Iterator[Engine]:
    """An engine that logs in as the reader (so the role's own settings apply)."""
    url = parse_database_url(migrated_database_url).set(username=reader_role, password=PASSWORD)
    engine = create_engine(url, poolclass=NullPool)  # one server session per connect()
    yield engine
    engine.dispose()


# --- item 10: what the reader may read -------------------------------------------------------------------

RAW = {
    "raw counts": "SELECT * FROM emotion_counts",
    "raw counts per zone": "SELECT * FROM zone_visits",
    "unsuppressed view": "SELECT * FROM emotion_counts_v",
    "unsuppressed daily view": "SELECT * FROM branch_daily_v",
    "the policy table": "SELECT * FROM privacy_settings",
    "change the threshold": "UPDATE privacy_settings SET min_visits = 0",
}


@pytest.mark.parametrize("statement", RAW.values(), ids=RAW.keys())
def test_the_reader_cannot_read_raw_counts_or_change_the_policy(reader: Engine, statement: str) -> None:
    orig = refused(reader, statement, DBAPIError)
    assert isinstance(orig, psycopg.errors.InsufficientPrivilege)


def _hours(reader: Engine) -> dict[tuple[str, int], dict[str, Any]]:
    with reader.connect() as conn:
        rows = conn.execute(text("SELECT * FROM store_hourly_v")).mappings().all()
    return {(r["store_id"], int(r["hour_start"].timestamp())): dict(r) for r in rows}


DAY_15 = 1705276800


def test_hours_below_the_threshold_show_no_emotion(writer: Engine, reader: Engine) -> None:
    assert get_min_visits(writer) == 0
    everything = _hours(reader)
    assert not any(r["suppressed"] for r in everything.values())
    set_min_visits(writer, 3)
    hours = _hours(reader)
    kimma, soho_late = hours[("hn-kimma", DAY_15 + 3 * 3600)], hours[("ny-soho", DAY_15 + 29 * 3600)]
    for small in (kimma, soho_late):  # 2 visits and 1 visit
        assert small["suppressed"] is True and small["visits"] in (1, 2)  # counts stay visible
        emotions = {k: v for k, v in small.items() if k.startswith(("visits_", "faces_"))}
        assert set(emotions.values()) == {None}, emotions
        assert small["readable_visits"] is None and small["classified_faces"] is None
        assert small["visit_satisfaction_index"] is None and small["face_satisfaction_index"] is None
    small_keys = {("hn-kimma", DAY_15 + 3 * 3600), ("ny-soho", DAY_15 + 29 * 3600)}
    shown = {key: row for key, row in hours.items() if key not in small_keys}
    assert len(shown) == 4 and all(not r["suppressed"] for r in shown.values())
    assert all(row == everything[key] for key, row in shown.items())  # 3 visits or more: unchanged


def test_store_hours_is_the_view_for_a_range_and_only_the_reader_may_call_it(
    writer: Engine, reader: Engine
) -> None:
    set_min_visits(writer, 3)
    start, end = "2024-01-15T03:00:00Z", "2024-01-15T17:00:00Z"
    with reader.connect() as conn:
        called = conn.execute(text(f"SELECT * FROM store_hours('{start}', '{end}') ORDER BY 1, 5")).all()
        viewed = conn.execute(
            text(f"SELECT * FROM store_hourly_v WHERE hour_start BETWEEN '{start}' AND '{end}' ORDER BY 1, 5")
        ).all()
    assert called == viewed and len(called) == 4  # 03:00 Kim Ma (suppressed) and Trang Tien, 16:00, 17:00
    assert [r.suppressed for r in called] == [True, False, False, False]
    other = f"ms_other_{uuid.uuid4().hex[:8]}"
    with writer.begin() as conn:
        conn.execute(text(f"CREATE ROLE {other}"))
    try:
        with writer.connect() as conn:
            may = conn.execute(
                text("SELECT has_function_privilege(:r, 'store_hours(timestamptz, timestamptz)', 'EXECUTE')"),
                {"r": other},
            )
            assert may.scalar_one() is False  # not granted to PUBLIC
    finally:
        drop_role(writer, other)


def test_days_sum_only_the_hours_shown(writer: Engine, reader: Engine) -> None:
    set_min_visits(writer, 3)
    with reader.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM store_daily_v WHERE store_id = 'hn-kimma' OR store_id = 'ny-soho'")
        ).mappings()
        days = {(r["store_id"], str(r["local_day"])): dict(r) for r in rows}
    # Kim Ma's only hour is suppressed: its day has visitors but no emotion, so nothing can be subtracted
    kimma = days[("hn-kimma", "2024-01-15")]
    assert (kimma["visits"], kimma["suppressed_hours"], kimma["visits_sad"], kimma["readable_visits"]) == (
        2,
        1,
        None,
        None,
    )
    assert kimma["visit_satisfaction_index"] is None
    soho = days[("ny-soho", "2024-01-15")]  # 23:30 local, 3 visits: shown
    assert (soho["suppressed_hours"], soho["visits_happy"], soho["visits_angry"]) == (0, 2, 1)


def _panel(uid: str, title: str) -> str:
    model = json.loads((DASHBOARD_DIR / f"{uid}.json").read_text(encoding="utf-8"))
    return next(str(p["targets"][0]["rawSql"]) for p in model["panels"] if p["title"] == title)


def _all(options: list[str]) -> VariableValue:
    return VariableValue(ALL_VALUE, multi=True, include_all=True, options=options, all_value=ALL_SQL)


SCOPE = {
    "branch": _all(["hanoi", "newyork"]),
    "store": _all(["hn-kimma", "hn-trangtien", "ny-soho"]),
    "camera": _all([]),
    "silent_minutes": VariableValue("15"),
}


def test_the_dashboards_show_what_the_views_let_through(writer: Engine, reader: Engine) -> None:
    set_min_visits(writer, 3)
    with reader.connect() as conn:
        sql = expand(
            _panel("moodstream-satisfaction", "Visitors, satisfaction per visit and dwell (whole range)"),
            SCOPE,
            *RANGE,
        )
        (row,) = conn.execute(text(sql)).mappings()
        ranking_sql = _panel(
            "moodstream-satisfaction", "Stores ranked by satisfaction per visit (whole range)"
        )
        ranking = {
            r["store_id"]: dict(r) for r in conn.execute(text(expand(ranking_sql, SCOPE, *RANGE))).mappings()
        }
    # 18 visitors; readable 14 less Kim Ma's 1 (SoHo's 05:00 visit was unreadable); its sad visit gone:
    # happy 8 - (angry 1 + disgust 1 + fear 1 + sad 1) = 4 over 13
    assert (row["visitors"], row["readable"], row["satisfaction"]) == (18, 13, pytest.approx(4 / 13))
    assert ranking["hn-kimma"]["visits"] == 2 and ranking["hn-kimma"]["satisfaction"] is None
    assert ranking["hn-kimma"]["suppressed_hours"] == 1


@pytest.mark.parametrize("value", [-1, 1_000_001])
def test_the_threshold_is_bounded(writer: Engine, value: int) -> None:
    with pytest.raises(DatabaseError, match="min_visits must be 0 to 1000000"):
        set_min_visits(writer, value)
    assert get_min_visits(writer) == 0


def test_db_min_visits_command_sets_and_shows_the_threshold(
    writer: Engine, migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moodstream.cli.app import build_app

    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", migrated_database_url)
    result = CliRunner().invoke(build_app(), ["db", "min-visits", "5"])
    assert result.exit_code == 0, result.output
    assert "min_visits = 5" in result.stdout and get_min_visits(writer) == 5
    shown = CliRunner().invoke(build_app(), ["db", "min-visits"])
    assert shown.exit_code == 0 and "min_visits = 5" in shown.stdout


# --- item 10: the reader's limits ------------------------------------------------------------------------


def test_the_reader_has_a_statement_timeout(reader: Engine) -> None:
    with reader.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "30s"
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one() == "1min"


def test_the_reader_has_a_connection_limit(writer: Engine, reader_role: str, reader: Engine) -> None:
    with writer.connect() as conn:
        limit = conn.execute(text("SELECT rolconnlimit FROM pg_roles WHERE rolname = :r"), {"r": reader_role})
        assert limit.scalar_one() == READER_CONNECTION_LIMIT
    held = []
    try:
        for _ in range(READER_CONNECTION_LIMIT):
            held.append(reader.connect())
        with pytest.raises(OperationalError, match="too many connections for role"):
            reader.connect()
    finally:
        for conn in held:
            conn.close()


# --- item 11: hostile variable values ---------------------------------------------------------------------

CANARY = "ms.injected"
HOSTILE = {
    "expression": f"0 + length(set_config('{CANARY}', 'yes', false))",
    "quote break": f"x'); SELECT set_config('{CANARY}', 'yes', false); --",
    "backslash quote": f"\\'); SELECT set_config('{CANARY}', 'yes', false); --",
    "dollar quote": f"$$); SELECT set_config('{CANARY}', 'yes', false); --$$",
    "array break": f"x']::text[]) OR length(set_config('{CANARY}', 'yes', false)) > 0 OR (ARRAY['x",
    "all marker": "__all",
    "macro inside a value": "$__timeFrom() OR true --",
}
"""Values a viewer can put in a dashboard URL (``?var-store=...``), whatever the variable's options."""


def _queries() -> list[tuple[str, str]]:
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        out += [(p["title"], t["rawSql"]) for p in model["panels"] for t in p["targets"]]
        out += [
            (f"variable {v['name']}", v["query"]) for v in model["templating"]["list"] if v["type"] == "query"
        ]
    return out


def _hostile(name: str, value: str) -> dict[str, VariableValue]:
    given = (
        VariableValue(value)
        if name == "silent_minutes"
        else VariableValue([value], True, True, all_value=ALL_SQL)
    )
    return {**SCOPE, name: given}


def _outcome(conn: Connection, sql: str) -> str:
    try:
        conn.execute(text(sql)).all()
    except DBAPIError as exc:
        return type(exc.orig).__name__
    injected = conn.execute(text(f"SELECT current_setting('{CANARY}', true)")).scalar_one()
    assert injected in (None, ""), "the variable's value ran as SQL"
    return "ran"


@pytest.mark.parametrize("variable", ["branch", "store", "camera", "silent_minutes"])
def test_hostile_variable_values_never_run_as_sql(reader: Engine, variable: str) -> None:
    queries = _queries()
    assert len(queries) >= 20
    outcomes: dict[str, set[str]] = {}
    with reader.connect() as conn:
        for label, value in HOSTILE.items():
            for title, sql in queries:
                if f"{{{variable}:" not in sql:
                    continue
                outcome = _outcome(conn, expand(sql, _hostile(variable, value), *RANGE, interval="5m"))
                conn.rollback()
                outcomes.setdefault(label, set()).add(outcome)
                allowed = {"ran"}
                if variable == "silent_minutes":
                    allowed.add("InvalidTextRepresentation")  # not an integer: the cast refuses it
                if label == "macro inside a value":
                    allowed.add("SyntaxError")  # the datasource expands macros inside literals too
                assert outcome in allowed, (variable, label, title)
    assert outcomes, f"no query uses ${variable}"


def test_a_value_of_another_type_is_refused_by_the_cast(reader: Engine) -> None:
    sql = _panel("moodstream-camera-health", "Cameras silent longer than $silent_minutes min")
    with reader.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(expand(sql, {**SCOPE, "silent_minutes": VariableValue("15 minutes")}, *RANGE)))
    assert isinstance(caught.value.orig, psycopg.errors.InvalidTextRepresentation)
