"""Expanding panel SQL the way Grafana does for its PostgreSQL datasource, to run it outside Grafana.

Two steps, in Grafana's order:

1. template variables (frontend): ``$name`` / ``${name}`` / ``${name:format}``. Without a format, a
   variable that is multi-value or has "All" turns each value into a quoted literal (``'`` doubled)
   joined by commas, and a single-value variable without "All" is inserted raw (the SQL injection of
   issue 13 item 11). ``${name:sqlstring}`` quotes every value, single or not; ``${name:raw}`` quotes
   none. The current value ``$__all`` stands for every option, or, when the variable has a custom all
   value, for that value inserted as it is, whatever the format (as Grafana does).
   ``$__interval`` / ``$__interval_ms`` come from the panel's interval.
2. macros (backend): ``$__time(c)``, ``$__timeEpoch(c)``, ``$__timeFilter(c)``, ``$__timeFrom()``,
   ``$__timeTo()``, ``$__timeGroup(c, interval)``, ``$__timeGroupAlias(c, interval)``,
   ``$__unixEpochFilter(c)``. Times are UTC RFC 3339; ``$__timeGroup`` is
   ``floor(extract(epoch from c)/S)*S`` for an interval of S seconds. An unknown macro is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

ALL_VALUE: Final[str] = "$__all"
"""Grafana's current value of a variable whose "All" option is selected."""


class MacroError(ValueError):
    """Panel SQL that Grafana could not expand (unknown macro, bad arguments, unknown interval)."""


@dataclass(frozen=True)
class VariableValue:
    """A template variable's current value (one value, several, or ``ALL_VALUE``) and its options."""

    current: str | Sequence[str]
    multi: bool = False
    include_all: bool = False
    options: Sequence[str] = ()
    all_value: str | None = None
    """The variable's custom all value (``allValue``), inserted unformatted when "All" is selected."""

    def is_all(self) -> bool:
        """True when "All" is selected (as Grafana tells: the value, or the first of the values)."""
        if isinstance(self.current, str):
            return self.current == ALL_VALUE
        return bool(self.current) and self.current[0] == ALL_VALUE

    def values(self) -> list[str]:
        """The selected values, with ``$__all`` replaced by every option."""
        if self.is_all():
            return list(self.options)
        return [self.current] if isinstance(self.current, str) else list(self.current)


def quote_literal(value: str) -> str:
    """SQL string literal, as the PostgreSQL datasource quotes variable values."""
    return "'" + value.replace("'", "''") + "'"


FORMATS: Final[tuple[str, ...]] = ("sqlstring", "raw")
"""The ``${name:format}`` formats this expander knows (others are a MacroError)."""


def _format_variable(value: VariableValue, fmt: str | None) -> str:
    if value.is_all() and value.all_value is not None:
        return value.all_value
    values = value.values()
    if fmt == "raw" or (fmt is None and not value.multi and not value.include_all):
        return ",".join(values)
    return ",".join(quote_literal(v) for v in values)


_INTERVAL_UNITS: Final[dict[str, float]] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")


def interval_seconds(interval: str) -> float:
    """Seconds of a Grafana interval string ('30s', '5m', '1h', '1d'); MacroError otherwise."""
    match = _INTERVAL.match(interval.strip().strip("'\""))
    if not match:
        raise MacroError(f"interval {interval!r} is not a Grafana interval such as 1m, 5m, 1h or 1d")
    return int(match.group(1)) * _INTERVAL_UNITS[match.group(2)]


_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def interpolate_variables(sql: str, variables: Mapping[str, VariableValue], interval: str) -> str:
    """Replace known template variables and ``$__interval``/``$__interval_ms``; leave macros alone."""
    builtins = {"__interval": interval, "__interval_ms": str(int(interval_seconds(interval) * 1000))}

    def replace(match: re.Match[str]) -> str:
        name, fmt = match.group(1) or match.group(3), match.group(2)
        if fmt is not None and fmt not in FORMATS:
            raise MacroError(
                f"unknown variable format {fmt!r} in {match.group(0)} (known: {', '.join(FORMATS)})"
            )
        if name in builtins:
            return builtins[name]
        if name in variables:
            return _format_variable(variables[name], fmt)
        return match.group(0)

    return _VARIABLE.sub(replace, sql)


def _rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


_MACRO = re.compile(r"\$(__\w+)\(([^)]*)\)")


def expand_macros(sql: str, time_from: datetime, time_to: datetime) -> str:
    """Expand the PostgreSQL datasource's macros for the range [time_from, time_to] (aware datetimes)."""
    if time_from.tzinfo is None or time_to.tzinfo is None:
        raise MacroError("time_from and time_to must be timezone-aware")
    start, end = _rfc3339(time_from), _rfc3339(time_to)

    def one(name: str, args: list[str]) -> str:
        def need(n: int) -> None:
            if len(args) < n or any(not a for a in args[:n]):
                raise MacroError(f"macro ${name} needs {n} argument(s), got {args!r}")

        if name == "__time":
            need(1)
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            need(1)
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            need(1)
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        if name == "__timeFrom":
            return f"'{start}'"
        if name == "__timeTo":
            return f"'{end}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            need(2)
            s = _seconds_text(interval_seconds(args[1]))
            group = f"floor(extract(epoch from {args[0]})/{s})*{s}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        if name == "__unixEpochFilter":
            need(1)
            lo, hi = int(time_from.timestamp()), int(time_to.timestamp())
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        raise MacroError(f"unknown macro ${name}")

    def replace(match: re.Match[str]) -> str:
        raw = match.group(2).strip()
        args = [a.strip() for a in raw.split(",")] if raw else []
        return one(match.group(1), args)

    return _MACRO.sub(replace, sql)


def expand(
    sql: str,
    variables: Mapping[str, VariableValue],
    time_from: datetime,
    time_to: datetime,
    interval: str = "1m",
) -> str:
    """Panel SQL as the PostgreSQL server receives it from Grafana (variables, then macros)."""
    return expand_macros(interpolate_variables(sql, variables, interval), time_from, time_to)
