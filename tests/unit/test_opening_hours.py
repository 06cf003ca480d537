"""Opening hours in stores.yaml: what is open when (store time zone, exceptions, midnight, DST), and every
mistake reported with its line and key."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodstream.schemas.hours import OpeningHours
from moodstream.schemas.registry import RegistryError, load_registry

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PARIS = "Europe/Paris"

HOURS_YAML = """\
version: 1
stores:
  - id: hn-trangtien
    branch: hanoi
    timezone: Asia/Ho_Chi_Minh
    hours:
      weekly:
        mon: ["08:00-12:00", "13:30-22:00"]
        tue: ["08:00-22:00"]
        sat: ["09:00-24:00"]
        sun: ["00:00-02:00"]
      exceptions:
        - date: 2026-12-25
          hours: []
          note: Christmas
        - date: 2026-12-24
          hours: ["08:00-14:00"]
    cameras:
      - id: entrance
        source: videos/entrance.mp4
        fps: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stores.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def hanoi(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    """An instant given in Hanoi local time (2026)."""
    return datetime(2026, month, day, hour, minute, tzinfo=HANOI)


@pytest.fixture
def store_hours(tmp_path: Path) -> OpeningHours:
    hours = load_registry(write(tmp_path, HOURS_YAML)).stores[0].hours
    assert hours is not None
    return hours


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (hanoi(7, 7, 59), False),  # Monday before opening
        (hanoi(7, 8, 0), True),  # opening minute included
        (hanoi(7, 12, 0), False),  # closing minute excluded: lunch break
        (hanoi(7, 13, 30), True),
        (hanoi(7, 21, 59), True),
        (hanoi(7, 22, 0), False),
        (hanoi(9, 10, 0), False),  # Wednesday: not listed, closed
        (hanoi(12, 23, 59), True),  # Saturday until 24:00
        (hanoi(13, 1, 59), True),  # Sunday's own early range
        (hanoi(13, 2, 0), False),
        (hanoi(24, 13, 59), True),  # Thursday 24 Dec: an exception opens a closed weekday
        (hanoi(24, 14, 0), False),
        (hanoi(25, 10, 0), False),  # Friday 25 Dec: closed all day
        (datetime(2026, 12, 7, 1, 0, tzinfo=UTC), True),  # 08:00 in Hanoi (UTC+7)
        (datetime(2026, 12, 7, 0, 59, tzinfo=UTC), False),
    ],
)
def test_open_in_the_store_time_zone_with_exceptions(
    store_hours: OpeningHours, at: datetime, is_open: bool
) -> None:
    assert store_hours.is_open(at, "Asia/Ho_Chi_Minh") is is_open


def test_next_change_crosses_closed_days_exceptions_and_midnight(store_hours: OpeningHours) -> None:
    zone = "Asia/Ho_Chi_Minh"
    assert store_hours.next_change(hanoi(7, 12, 0), zone) == hanoi(7, 13, 30)
    assert store_hours.next_change(hanoi(8, 22, 0), zone) == hanoi(12, 9, 0)  # Wed-Fri closed
    assert store_hours.next_change(hanoi(24, 9, 0), zone) == hanoi(24, 14, 0)
    # open Saturday 09:00 until Sunday 02:00: 24:00 followed by 00:00 is no closing
    assert store_hours.next_change(hanoi(12, 20, 0), zone) == hanoi(13, 2, 0)


def test_wall_clock_hours_across_daylight_saving_time() -> None:
    hours = OpeningHours.model_validate({"weekly": {"sun": ["08:00-20:00"]}})
    # Paris moves from UTC+1 to UTC+2 on Sunday 29 March 2026: 08:00 local is 06:00 UTC that day
    assert hours.is_open(datetime(2026, 3, 29, 6, 0, tzinfo=UTC), PARIS)
    assert not hours.is_open(datetime(2026, 3, 29, 5, 59, tzinfo=UTC), PARIS)
    assert not hours.is_open(datetime(2026, 3, 22, 6, 59, tzinfo=UTC), PARIS)  # a week before: UTC+1
    opens = hours.next_change(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), PARIS)
    assert opens == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_a_store_without_hours_is_always_open_and_closed_week_never_opens(tmp_path: Path) -> None:
    text = HOURS_YAML.replace(
        HOURS_YAML[HOURS_YAML.index("    hours:") : HOURS_YAML.index("    cameras:")], ""
    )
    store = load_registry(write(tmp_path, text)).stores[0]
    assert store.hours is None
    assert all(store.is_open(hanoi(7, 0) + timedelta(hours=h)) for h in range(0, 24 * 7, 5))
    never = OpeningHours.model_validate({"weekly": {}})
    assert not never.is_open(hanoi(7, 12), "UTC") and never.next_change(hanoi(7, 12), "UTC") is None


BAD_HOURS = [
    ("end past midnight", ('tue: ["08:00-22:00"]', 'tue: ["08:00-25:00"]'), 9, "weekly.tue", "HH:MM-HH:MM"),
    ("end before start", ('tue: ["08:00-22:00"]', 'tue: ["22:00-08:00"]'), 9, "weekly.tue", "ends before"),
    ("overlap", ('tue: ["08:00-22:00"]', 'tue: ["08:00-12:00", "11:00-13:00"]'), 9, "weekly.tue", "overlaps"),
    ("not a list", ('tue: ["08:00-22:00"]', 'tue: "08:00-22:00"'), 9, "weekly.tue", "must be a list"),
    ("number", ('tue: ["08:00-22:00"]', "tue: [800]"), 9, "weekly.tue[0]", "valid string"),
    ("unknown day", ('tue: ["08:00-22:00"]', "tues: []"), 9, "weekly.tues", "allowed keys here: mon"),
    ("no weekly", ("      weekly:\n", "      week:\n"), 7, "hours.week", "unknown key 'week'"),
    ("duplicate date", ("date: 2026-12-24", "date: 2026-12-25"), 12, "hours.exceptions", "listed twice"),
    ("date too early", ("date: 2026-12-24", "date: 1999-12-24"), 16, "exceptions[1].date", ">= 2000-01-01"),
    ("exception key", ("note: Christmas", "reason: Christmas"), 15, "exceptions[0].reason", "allowed keys"),
    ("too many ranges", ('tue: ["08:00-22:00"]', f"tue: {[f'{h:02d}:00-{h:02d}:30' for h in range(13)]}"), 9,
     "weekly.tue", "at most 12"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "line", "key", "words"), [c[1:] for c in BAD_HOURS], ids=[c[0] for c in BAD_HOURS]
)
def test_bad_hours_report_line_and_key(
    tmp_path: Path, change: tuple[str, str], line: int, key: str, words: str
) -> None:
    text = HOURS_YAML.replace(*change, 1)
    assert text != HOURS_YAML, "the case changes nothing"
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, text))
    match = [p for p in info.value.problems if p.key.endswith(key) and p.line == line]
    assert match, f"no problem at line {line} key ...{key!r} in:\n{info.value}"
    assert words in match[0].message


def test_impossible_date_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="a date like 2026-02-30"):
        load_registry(write(tmp_path, HOURS_YAML.replace("date: 2026-12-24", "date: 2026-02-30")))


@st.composite
def schedules(draw: st.DrawFn) -> OpeningHours:
    """Random valid opening hours: up to 3 ordered ranges a weekday, a few exception dates in Dec 2026."""

    def day_ranges() -> st.SearchStrategy[list[str]]:
        def ranges(edges: list[int]) -> list[str]:
            pairs = zip(edges[::2], edges[1::2], strict=False)
            return [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in pairs]

        edges = st.lists(st.integers(0, 1440).map(lambda m: m // 30 * 30), max_size=6, unique=True)
        return edges.map(lambda e: sorted(e)[: len(e) // 2 * 2]).map(ranges)

    weekly = {day: draw(day_ranges()) for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    days = draw(st.lists(st.integers(1, 31), max_size=4, unique=True))
    exceptions = [{"date": f"2026-12-{d:02d}", "hours": draw(day_ranges())} for d in days]
    return OpeningHours.model_validate({"weekly": weekly, "exceptions": exceptions})


@settings(max_examples=60, deadline=None)
@given(
    hours=schedules(),
    minute=st.integers(0, 60 * 24 * 35),
    zone=st.sampled_from(["UTC", "Asia/Ho_Chi_Minh", "Europe/Paris", "America/New_York"]),
)
def test_next_change_is_the_first_instant_the_state_flips(
    hours: OpeningHours, minute: int, zone: str
) -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=minute)
    state = hours.is_open(at, zone)
    change = hours.next_change(at, zone)
    if change is None:  # never flips within the search horizon: check the next few weeks on a 30-minute grid
        assert all(hours.is_open(at + timedelta(minutes=30 * i), zone) == state for i in range(24 * 2 * 21))
        return
    assert change > at and hours.is_open(change, zone) != state
    steps = int((change - at) / timedelta(minutes=15))
    assert all(hours.is_open(at + timedelta(minutes=15 * i), zone) == state for i in range(min(steps, 3000)))
