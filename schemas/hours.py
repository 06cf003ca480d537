"""Opening hours of a store (``stores[].hours`` in stores.yaml): a weekly schedule in the store's own time
zone, plus exceptions for single dates (holidays, late openings).

Outside its opening hours a store's cameras are not read and silent-camera alerts do not fire. A store
without ``hours`` is always open. The same schedule is written to PostgreSQL (``opening_hours``) by the
registry sync, so SQL (the Grafana alerts) asks ``store_is_open(store_id, at)`` with the same answer as
``OpeningHours.is_open``.

    hours:
      weekly:                      # a day left out is closed
        mon: ["08:00-12:00", "13:30-22:00"]
        sat: ["09:00-24:00"]
      exceptions:
        - {date: 2026-12-25, hours: [], note: Christmas}     # closed all day
        - {date: 2026-12-24, hours: ["08:00-14:00"]}         # shorter day
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

WEEKDAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Keys of ``hours.weekly``, in ISO order (Monday = 1)."""
RANGE_PATTERN: Final[str] = r"^(?:[01]\d|2[0-3]):[0-5]\d-(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$"
RANGE_WORDS: Final[str] = (
    "a range HH:MM-HH:MM in the store's time zone, e.g. 08:30-21:00 (24:00 ends at midnight)"
)
MAX_RANGES_PER_DAY: Final[int] = 12
MAX_EXCEPTIONS: Final[int] = 1000
FIRST_DATE: Final[date] = date(2000, 1, 1)
LAST_DATE: Final[date] = date(2199, 12, 31)
_SEARCH_DAYS: Final[int] = 400
"""How far ``next_change`` looks ahead (a year and some: every exception date counts)."""


def parse_range(text: str) -> tuple[int, int]:
    """``"08:30-21:00"`` -> (510, 1260): minutes after local midnight, start included, end excluded."""
    if not re.match(RANGE_PATTERN, text):
        raise ValueError(f"must be {RANGE_WORDS}")
    start, end = (int(h) * 60 + int(m) for h, m in (part.split(":") for part in text.split("-")))
    return start, end


def _check_ranges(ranges: tuple[str, ...]) -> tuple[str, ...]:
    """Ranges of one day: each well formed with start before end, in order, none overlapping."""
    previous_end = -1
    for text in ranges:
        start, end = parse_range(text)
        if start >= end:
            raise ValueError(f"range {text} ends before it starts; write ranges within one day (up to 24:00)")
        if start < previous_end:
            raise ValueError(f"range {text} overlaps or precedes the range before it; list ranges in order")
        previous_end = end
    return ranges


DayRanges = Annotated[tuple[str, ...], Field(max_length=MAX_RANGES_PER_DAY)]
"""Opening ranges of one day, in order, e.g. ``("08:00-12:00", "13:30-22:00")``; empty: closed."""
_DAY_WORDS: Final[str] = f"({RANGE_WORDS}); empty or left out: closed all day."


class WeeklyHours(BaseModel):
    """The usual week: opening ranges per weekday; a day left out is closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mon: DayRanges = Field(default=(), description=f"Opening ranges on Mondays {_DAY_WORDS}")
    tue: DayRanges = Field(default=(), description=f"Opening ranges on Tuesdays {_DAY_WORDS}")
    wed: DayRanges = Field(default=(), description=f"Opening ranges on Wednesdays {_DAY_WORDS}")
    thu: DayRanges = Field(default=(), description=f"Opening ranges on Thursdays {_DAY_WORDS}")
    fri: DayRanges = Field(default=(), description=f"Opening ranges on Fridays {_DAY_WORDS}")
    sat: DayRanges = Field(default=(), description=f"Opening ranges on Saturdays {_DAY_WORDS}")
    sun: DayRanges = Field(default=(), description=f"Opening ranges on Sundays {_DAY_WORDS}")

    @field_validator(*WEEKDAYS)
    @classmethod
    def _valid_ranges(cls, ranges: DayRanges) -> DayRanges:
        return _check_ranges(ranges)

    def ranges(self, iso_weekday: int) -> DayRanges:
        """Ranges of ISO weekday 1 (Monday) to 7 (Sunday)."""
        value: DayRanges = getattr(self, WEEKDAYS[iso_weekday - 1])
        return value


class HoursException(BaseModel):
    """One date whose hours differ from the week's (a holiday, a late opening)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date = Field(
        ge=FIRST_DATE, le=LAST_DATE, description="The local date (YYYY-MM-DD) in the store's time zone."
    )
    hours: DayRanges = Field(
        description=f"Opening ranges on that date ({RANGE_WORDS}); empty: closed all day.",
    )
    note: str | None = Field(default=None, max_length=200, description="Why (shown nowhere; for readers).")

    @field_validator("hours")
    @classmethod
    def _valid_ranges(cls, ranges: DayRanges) -> DayRanges:
        return _check_ranges(ranges)


class OpeningHours(BaseModel):
    """A store's opening hours: the weekly schedule and dated exceptions, in the store's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekly: WeeklyHours = Field(
        description="Opening ranges per weekday (mon ... sun); a day left out is closed."
    )
    exceptions: tuple[HoursException, ...] = Field(
        default=(),
        max_length=MAX_EXCEPTIONS,
        description=f"Dates whose hours differ from the week (at most {MAX_EXCEPTIONS}, each date once).",
    )

    @field_validator("exceptions")
    @classmethod
    def _unique_dates(cls, exceptions: tuple[HoursException, ...]) -> tuple[HoursException, ...]:
        seen: set[date] = set()
        for item in exceptions:
            if item.date in seen:
                raise ValueError(f"date {item.date.isoformat()} is listed twice in exceptions; keep one")
            seen.add(item.date)
        return exceptions

    _by_date: dict[date, DayRanges] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        """Index the exceptions by date (looked up for every instant checked)."""
        self._by_date = {item.date: item.hours for item in self.exceptions}

    def ranges_on(self, day: date) -> list[tuple[int, int]]:
        """Opening ranges (minutes after local midnight) of a local date: its exception, else its weekday."""
        ranges = self._by_date.get(day)
        if ranges is None:
            ranges = self.weekly.ranges(day.isoweekday())
        return [parse_range(r) for r in ranges]

    def is_open(self, at: datetime, timezone: str) -> bool:
        """Whether the store is open at the aware instant ``at`` (its local time in ``timezone``)."""
        local = at.astimezone(ZoneInfo(timezone))
        minute = local.hour * 60 + local.minute + local.second / 60
        return any(start <= minute < end for start, end in self.ranges_on(local.date()))

    def next_change(self, at: datetime, timezone: str) -> datetime | None:
        """The first instant after ``at`` at which the store opens or closes (None: not within a year)."""
        zone = ZoneInfo(timezone)
        first_day = at.astimezone(zone).date()
        now_open = self.is_open(at, timezone)
        for offset in range(_SEARCH_DAYS):
            day = first_day + timedelta(days=offset)
            edges = sorted({minute for span in self.ranges_on(day) for minute in span})
            for minute in edges:
                # wall-clock arithmetic (same zone): 24:00 is the next local midnight, DST days included
                moment = datetime.combine(day, time(0), zone) + timedelta(minutes=minute)
                if moment > at and self.is_open(moment, timezone) != now_open:
                    return moment
        return None
