# ruff: noqa: E501
"""Seeded counts shared by the report and Grafana SQL tests (issue 6).

Three stores in two branches and two time zones; every number the tests expect is worked out by
hand in the test that uses it, from the rows below.

| # | store / camera          | bucket_start UTC | local time        | frames | faces | counts            |
|---|-------------------------|------------------|-------------------|--------|-------|-------------------|
| 1 | hn-trangtien / entrance | 01-15 16:59      | 01-15 23:59 (+07) | 10 | 10 | happy 6, angry 1, sad 1, neutral 2 |
| 2 | hn-trangtien / entrance | 01-15 17:00      | 01-16 00:00 (+07) | 10 | 5  | happy 1, fear 2, surprise 2 |
| 3 | hn-trangtien / counter  | 01-15 03:30      | 01-15 10:30 (+07) | 20 | 8  | happy 4, disgust 1, neutral 3 |
| 4 | hn-kimma / entrance     | 01-15 03:10      | 01-15 10:10 (+07) | 6  | 4  | happy 2, sad 2 |
| 5 | ny-soho / door          | 01-16 04:30      | 01-15 23:30 (-05) | 12 | 6  | happy 3, angry 1, neutral 2 |
| 6 | ny-soho / door          | 01-16 05:00      | 01-16 00:00 (-05) | 12 | 3  | happy 3 |

All in January 2024. frame_losses: hn-trangtien/entrance at 2024-01-15 17:00 shed 3 dead 1; ny-soho/door at 2024-01-16 04:30
shed 2 dead 0. Camera ``hn-kimma/backdoor`` is registered and enabled but never sent a frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, text

from moodstream.schemas.labels import EMOTIONS

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
    (
        "hn-trangtien",
        "entrance",
        _utc("2024-01-15T16:59"),
        10,
        10,
        {"happy": 6, "angry": 1, "sad": 1, "neutral": 2},
    ),
    ("hn-trangtien", "entrance", _utc("2024-01-15T17:00"), 10, 5, {"happy": 1, "fear": 2, "surprise": 2}),
    ("hn-trangtien", "counter", _utc("2024-01-15T03:30"), 20, 8, {"happy": 4, "disgust": 1, "neutral": 3}),
    ("hn-kimma", "entrance", _utc("2024-01-15T03:10"), 6, 4, {"happy": 2, "sad": 2}),
    ("ny-soho", "door", _utc("2024-01-16T04:30"), 12, 6, {"happy": 3, "angry": 1, "neutral": 2}),
    ("ny-soho", "door", _utc("2024-01-16T05:00"), 12, 3, {"happy": 3}),
)
LOSSES: Final = (
    ("hn-trangtien", "entrance", _utc("2024-01-15T17:00"), 3, 1),
    ("ny-soho", "door", _utc("2024-01-16T04:30"), 2, 0),
)


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
    columns = ", ".join(EMOTIONS)
    values = ", ".join(f":{e}" for e in EMOTIONS)
    for store_id, camera_id, start, frames, faces, counts in COUNTS:
        conn.execute(
            text(
                "INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, "
                f"frames, faces, {columns}, last_frame_at) VALUES (:t, :s, :c, 60, :frames, :faces, {values}, "
                ":t + interval '59 seconds')"
            ),
            {"t": start, "s": store_id, "c": camera_id, "frames": frames, "faces": faces}
            | {e: counts.get(e, 0) for e in EMOTIONS},
        )
    for store_id, camera_id, start, shed, dead in LOSSES:
        conn.execute(
            text(
                "INSERT INTO frame_losses (bucket_start, store_id, camera_id, shed, dead) "
                "VALUES (:t, :s, :c, :shed, :dead)"
            ),
            {"t": start, "s": store_id, "c": camera_id, "shed": shed, "dead": dead},
        )
