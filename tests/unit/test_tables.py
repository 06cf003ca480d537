"""The SQLAlchemy tables keep the Database contract other stages and dashboards are written against."""

from __future__ import annotations

import itertools

import pytest

from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS

CONTRACT = {
    "stores": (["id"], ["id", "name", "branch", "timezone", "enabled", "created_at", "updated_at"]),
    "cameras": (
        ["store_id", "id"],
        ["store_id", "id", "name", "source_redacted", "fps", "enabled", "created_at", "updated_at"],
    ),
    "emotion_counts": (
        ["bucket_start", "store_id", "camera_id"],
        [
            *("bucket_start", "store_id", "camera_id", "bucket_seconds", "frames"),
            *("visits", "readable_visits", *(f"visits_{e}" for e in EMOTIONS), "dwell_seconds_sum"),
            *("dwell_lt_10s", "dwell_10_30s", "dwell_30_120s", "dwell_120_600s", "dwell_ge_600s"),
            *("faces", "readable_faces", *(f"faces_{e}" for e in EMOTIONS)),
            *("last_frame_at", "updated_at"),
        ],
    ),
    "zone_visits": (
        ["bucket_start", "store_id", "camera_id", "zone"],
        [
            *("bucket_start", "store_id", "camera_id", "zone", "bucket_seconds"),
            *("visits", "readable_visits", *(f"visits_{e}" for e in EMOTIONS), "dwell_seconds_sum"),
            *("dwell_lt_10s", "dwell_10_30s", "dwell_30_120s", "dwell_120_600s", "dwell_ge_600s"),
            "updated_at",
        ],
    ),
    "frame_losses": (
        ["bucket_start", "store_id", "camera_id"],
        ["bucket_start", "store_id", "camera_id", "shed", "dead", "updated_at"],
    ),
    "opening_hours": (["id"], ["id", "store_id", "weekday", "day", "opens", "closes"]),
    "applied_frames": (
        ["store_id", "camera_id", "stream_epoch", "seq"],
        ["store_id", "camera_id", "stream_epoch", "seq", "applied_at"],
    ),
    "privacy_settings": (["id"], ["id", "min_visits", "updated_at"]),
}


@pytest.mark.parametrize("name", CONTRACT)
def test_table_columns_and_primary_key(name: str) -> None:
    primary_key, columns = CONTRACT[name]
    table = tables.metadata.tables[name]
    assert [c.name for c in table.columns] == columns
    assert [c.name for c in table.primary_key.columns] == primary_key


def test_timestamps_are_timezone_aware() -> None:
    for table in tables.metadata.tables.values():
        for column in table.columns:
            if column.name.endswith("_at") or column.name == "bucket_start":
                assert getattr(column.type, "timezone", False), f"{table.name}.{column.name}"


def test_reader_never_sees_internal_tables() -> None:
    assert not set(tables.INTERNAL_TABLES) & set(tables.PUBLIC_TABLES)
    assert set(tables.PUBLIC_TABLES) | set(tables.INTERNAL_TABLES) == set(tables.metadata.tables)


def test_every_counter_has_a_comment_and_the_dwell_bins_cover_every_duration() -> None:
    table = tables.emotion_counts
    for name in (*tables.COUNT_COLUMNS, "dwell_seconds_sum"):
        assert table.c[name].comment, name
    bins = tables.DWELL_BINS
    assert bins[0][1] == 0.0 and bins[-1][2] is None
    assert all(previous[2] == following[1] for previous, following in itertools.pairwise(bins))
