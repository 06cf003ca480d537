"""Grafana PostgreSQL macro and variable expansion (moodstream.runtime.dashboards.macros)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from moodstream.runtime.dashboards.macros import (
    ALL_VALUE,
    MacroError,
    VariableValue,
    expand,
    expand_macros,
    interpolate_variables,
    interval_seconds,
)

FROM = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)
TO = datetime(2024, 1, 16, 12, 30, 15, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "$__timeFilter(bucket_start)",
            "bucket_start BETWEEN '2024-01-15T00:00:00Z' AND '2024-01-16T12:30:15.5Z'",
        ),
        ("$__timeFrom()", "'2024-01-15T00:00:00Z'"),
        ("$__timeTo()", "'2024-01-16T12:30:15.5Z'"),
        ("$__time(t)", 't AS "time"'),
        ("$__timeEpoch(t)", 'extract(epoch from t) as "time"'),
        ("$__timeGroup(bucket_start, 5m)", "floor(extract(epoch from bucket_start)/300)*300"),
        ("$__timeGroup(bucket_start,'1h')", "floor(extract(epoch from bucket_start)/3600)*3600"),
        ("$__timeGroupAlias(b, 1d)", 'floor(extract(epoch from b)/86400)*86400 AS "time"'),
        ("$__unixEpochFilter(ts)", "ts >= 1705276800 AND ts <= 1705408215"),
        (
            "x = 1 AND $__timeFilter(a.b)",
            "x = 1 AND a.b BETWEEN '2024-01-15T00:00:00Z' AND '2024-01-16T12:30:15.5Z'",
        ),
    ],
)
def test_macros_expand_like_grafana(sql: str, expected: str) -> None:
    assert expand_macros(sql, FROM, TO) == expected


def test_time_range_is_rendered_in_utc() -> None:
    hanoi = timezone(timedelta(hours=7))
    out = expand_macros("$__timeFrom()", datetime(2024, 1, 15, 7, 0, tzinfo=hanoi), TO)
    assert out == "'2024-01-15T00:00:00Z'"


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("$__nosuch(x)", "unknown macro"),
        ("$__timeFilter()", "needs 1 argument"),
        ("$__timeGroup(b)", "needs 2 argument"),
        ("$__timeGroup(b, fortnight)", "not a Grafana interval"),
    ],
)
def test_bad_macros_are_errors(sql: str, error: str) -> None:
    with pytest.raises(MacroError, match=error):
        expand_macros(sql, FROM, TO)


def test_naive_times_are_rejected() -> None:
    with pytest.raises(MacroError, match="timezone-aware"):
        expand_macros("$__timeFrom()", datetime(2024, 1, 1), TO)


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [("1m", 60), ("30s", 30), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("500ms", 0.5)],
)
def test_interval_seconds(interval: str, seconds: float) -> None:
    assert interval_seconds(interval) == seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VariableValue(["a", "b"], multi=True, include_all=True, options=["a", "b", "c"]), "'a','b'"),
        (VariableValue(ALL_VALUE, multi=True, include_all=True, options=["a", "b", "c"]), "'a','b','c'"),
        (VariableValue([ALL_VALUE], multi=True, include_all=True, options=["x"]), "'x'"),
        (VariableValue("o'hara", multi=True), "'o''hara'"),
        (VariableValue("15"), "15"),
        (VariableValue("a", include_all=True, options=["a"]), "'a'"),
    ],
)
def test_variables_are_quoted_like_the_postgres_datasource(value: VariableValue, expected: str) -> None:
    assert interpolate_variables("IN ($v)", {"v": value}, "1m") == f"IN ({expected})"


def test_variable_forms_and_builtins() -> None:
    variables = {"store": VariableValue(["s1"], multi=True), "store_id": VariableValue("x")}
    sql = "${store} $store $store_id $__interval $__interval_ms $unknown $__timeFrom()"
    assert interpolate_variables(sql, variables, "5m") == "'s1' 's1' x 5m 300000 $unknown $__timeFrom()"


def test_expand_replaces_variables_before_macros() -> None:
    sql = "SELECT $__timeGroupAlias(t, $__interval) FROM x WHERE s IN ($store)"
    out = expand(sql, {"store": VariableValue(ALL_VALUE, True, True, ["a"])}, FROM, TO, interval="1h")
    assert out == "SELECT floor(extract(epoch from t)/3600)*3600 AS \"time\" FROM x WHERE s IN ('a')"


ALL_SQL = "'__all'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VariableValue("15"), "'15'"),  # a single value is quoted too
        (VariableValue("1); DROP TABLE stores; --"), "'1); DROP TABLE stores; --'"),
        (VariableValue("o'hara"), "'o''hara'"),
        (VariableValue(["a", "b'c"], multi=True, include_all=True), "'a','b''c'"),
        (VariableValue([], multi=True, include_all=True), ""),
        (VariableValue(ALL_VALUE, multi=True, include_all=True, options=["a"], all_value=ALL_SQL), ALL_SQL),
        (VariableValue(ALL_VALUE, multi=True, include_all=True, options=["a", "b"]), "'a','b'"),
    ],
)
def test_sqlstring_format_quotes_every_value_and_keeps_a_custom_all_value(
    value: VariableValue, expected: str
) -> None:
    assert interpolate_variables("${v:sqlstring}", {"v": value}, "1m") == expected


def test_raw_format_and_custom_all_value_are_inserted_as_they_are() -> None:
    variables = {
        "a": VariableValue(["x", "y"], multi=True),
        "b": VariableValue(ALL_VALUE, multi=True, include_all=True, options=["p"], all_value="*"),
    }
    assert interpolate_variables("${a:raw} ${b} ${b:raw} $b", variables, "1m") == "x,y * * *"
    assert interpolate_variables("${__interval_ms}", {}, "2m") == "120000"


def test_an_unknown_variable_format_is_an_error() -> None:
    with pytest.raises(MacroError, match="unknown variable format 'csv'"):
        interpolate_variables("${v:csv}", {"v": VariableValue("1")}, "1m")
