# ruff: noqa: E501
"""Seeded counts shared by the report and Grafana SQL tests (issues 6 and 11).

Three stores in two branches and two time zones; every number the tests expect is worked out by
hand in the test that uses it, from the tables below.

| # | store / camera          | bucket_start UTC | local time        | frames | faces | readable | classified faces (faces_<emotion>)   |
|---|-------------------------|------------------|-------------------|--------|-------|----------|--------------------------------------|
| 1 | hn-trangtien / entrance | 01-15 16:59      | 01-15 23:59 (+07) | 10     | 14    | 12       | happy 6, angry 1, sad 1, neutral 2   |
| 2 | hn-trangtien / entrance | 01-15 17:00      | 01-16 00:00 (+07) | 10     | 7     | 5        | happy 1, fear 2, surprise 2          |
| 3 | hn-trangtien / counter  | 01-15 03:30      | 01-15 10:30 (+07) | 20     | 8     | 8        | happy 4, disgust 1, neutral 3        |
| 4 | hn-kimma / entrance     | 01-15 03:10      | 01-15 10:10 (+07) | 6      | 5     | 4        | happy 2, sad 2                       |
| 5 | ny-soho / door          | 01-16 04:30      | 01-15 23:30 (-05) | 12     | 6     | 6        | happy 3, angry 1, neutral 2          |
| 6 | ny-soho / door          | 01-16 05:00      | 01-16 00:00 (-05) | 12     | 4     | 3        | happy 3                              |

Visits of the same rows (visits per emotion are of the readable visits; dwell bins <10 s, 10-30 s, 30-120 s,
120-600 s, >=600 s):

| # | visits | readable | visits per emotion          | dwell sum (s) | dwell bins    |
|---|--------|----------|-----------------------------|---------------|---------------|
| 1 | 5      | 4        | happy 3, sad 1              | 150           | 1, 2, 2, 0, 0 |
| 2 | 3      | 2        | happy 1, fear 1             | 45            | 1, 1, 1, 0, 0 |
| 3 | 4      | 4        | happy 2, disgust 1, neutral 1 | 700         | 0, 0, 1, 3, 0 |
| 4 | 2      | 1        | sad 1                       | 20            | 1, 1, 0, 0, 0 |
| 5 | 3      | 3        | happy 2, angry 1            | 900           | 0, 0, 1, 1, 1 |
| 6 | 1      | 0        | (unreadable)                | 4             | 1, 0, 0, 0, 0 |

All in January 2024. frame_losses: hn-trangtien/entrance at 2024-01-15 17:00 shed 3 dead 1; ny-soho/door at 2024-01-16 04:30
shed 2 dead 0. Camera ``hn-kimma/backdoor`` is registered and enabled but never sent a frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, text

from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.tables import DWELL_COLUMNS

STORES: Final = (
    ("hn-trangtien", "Trang Tien", "hanoi", "Asia/Ho_Chi_Minh"),
    ("hn-kimma", "Kim Ma", "hanoi", "Asia/Ho_Chi_Minh"),
    ("ny-soho", "SoHo", "newyork", "America/New_York"),
)
CAMERAS: Final = (
    ("hn-trangtien", "entrance"),
    ("hn-trangtien", "counter"),
    ("hn-kimma", "entrance"),
    ("hn-kimma", "backdoor"),
    ("ny-soho", "door"),
)


def _utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


COUNTS: Final = (
    # store, camera, bucket_start, frames, faces, readable faces, classified faces per emotion
    (
        "hn-trangtien",
        "entrance",
        _utc("2024-01-15T16:59"),
        10,
        14,
        12,
        {"happy": 6, "angry": 1, "sad": 1, "neutral": 2},
    ),
    ("hn-trangtien", "entrance", _utc("2024-01-15T17:00"), 10, 7, 5, {"happy": 1, "fear": 2, "surprise": 2}),
    ("hn-trangtien", "counter", _utc("2024-01-15T03:30"), 20, 8, 8, {"happy": 4, "disgust": 1, "neutral": 3}),
    ("hn-kimma", "entrance", _utc("2024-01-15T03:10"), 6, 5, 4, {"happy": 2, "sad": 2}),
    ("ny-soho", "door", _utc("2024-01-16T04:30"), 12, 6, 6, {"happy": 3, "angry": 1, "neutral": 2}),
    ("ny-soho", "door", _utc("2024-01-16T05:00"), 12, 4, 3, {"happy": 3}),
)
VISITS: Final = (
    # visits, readable visits, visits per emotion, dwell sum, dwell bins (same rows as COUNTS)
    (5, 4, {"happy": 3, "sad": 1}, 150.0, (1, 2, 2, 0, 0)),
    (3, 2, {"happy": 1, "fear": 1}, 45.0, (1, 1, 1, 0, 0)),
    (4, 4, {"happy": 2, "disgust": 1, "neutral": 1}, 700.0, (0, 0, 1, 3, 0)),
    (2, 1, {"sad": 1}, 20.0, (1, 1, 0, 0, 0)),
    (3, 3, {"happy": 2, "angry": 1}, 900.0, (0, 0, 1, 1, 1)),
    (1, 0, {}, 4.0, (1, 0, 0, 0, 0)),
)
LOSSES: Final = (
    ("hn-trangtien", "entrance", _utc("2024-01-15T17:00"), 3, 1),
    ("ny-soho", "door", _utc("2024-01-16T04:30"), 2, 0),
)


def _row(
    frames: int,
    faces: int,
    readable_faces: int,
    classified: dict[str, int],
    visits: int,
    readable_visits: int,
    per_visit: dict[str, int],
    dwell_sum: float,
    bins: tuple[int, ...],
) -> dict[str, float]:
    """Column -> value of one emotion_counts row."""
    return {
        "frames": frames,
        "faces": faces,
        "readable_faces": readable_faces,
        **{f"faces_{e}": classified.get(e, 0) for e in EMOTIONS},
        "visits": visits,
        "readable_visits": readable_visits,
        **{f"visits_{e}": per_visit.get(e, 0) for e in EMOTIONS},
        "dwell_seconds_sum": dwell_sum,
        **dict(zip(DWELL_COLUMNS, bins, strict=True)),
    }


def seed(conn: Connection) -> None:
    """Insert the stores, cameras, counts and losses above (the caller commits)."""
    for store_id, name, branch, tz in STORES:
        conn.execute(
            text("INSERT INTO stores (id, name, branch, timezone) VALUES (:i, :n, :b, :t)"),
            {"i": store_id, "n": name, "b": branch, "t": tz},
        )
    for store_id, camera_id in CAMERAS:
        conn.execute(
            text(
                "INSERT INTO cameras (store_id, id, name, source_redacted, fps) "
                "VALUES (:s, :c, :c, 'videos/x.mp4', 2)"
            ),
            {"s": store_id, "c": camera_id},
        )
    for (store_id, camera_id, start, frames, faces, readable, classified), visits in zip(
        COUNTS, VISITS, strict=True
    ):
        row = _row(frames, faces, readable, classified, *visits)
        names = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        conn.execute(
            text(
                f"INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, {names}, "
                f"last_frame_at) VALUES (:t, :s, :c, 60, {values}, :t + interval '59 seconds')"
            ),
            {"t": start, "s": store_id, "c": camera_id, **row},
        )
    for store_id, camera_id, start, shed, dead in LOSSES:
        conn.execute(
            text(
                "INSERT INTO frame_losses (bucket_start, store_id, camera_id, shed, dead) "
                "VALUES (:t, :s, :c, :shed, :dead)"
            ),
            {"t": start, "s": store_id, "c": camera_id, "shed": shed, "dead": dead},
        )
