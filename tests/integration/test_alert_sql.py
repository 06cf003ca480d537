"""Opening hours in PostgreSQL and the Grafana alert rules' SQL, run on a real server as the read-only role.

The registry sync writes each store's hours to ``opening_hours``; ``store_is_open(store, at)`` must agree
with the Python schedule at every instant (exceptions, midnight, DST). Then each provisioned rule's query
runs against seeded counts: a silent camera of an open store fires, the same camera of a closed store does
not; lag, lost frames and a satisfaction drop fire where they should and nowhere else.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from moodstream.runtime.database import create_reader_role, sync_registry
from moodstream.schemas.registry import Registry, load_registry
from tests.alert_rules import SIGNALS, grafana_rules

REGISTRY = """\
version: 1
stores:
  - id: paris
    branch: eu
    timezone: Europe/Paris
    hours:
      weekly:
        mon: ["08:00-12:00", "13:30-22:00"]
        sat: ["09:00-24:00"]
        sun: ["00:00-02:00", "10:00-18:00"]
      exceptions:
        - {date: 2026-03-30, hours: []}
        - {date: 2026-03-31, hours: ["07:00-09:00"]}
    cameras:
      - {id: door, source: door.mp4, fps: 2}
  - id: always
    branch: eu
    timezone: UTC
    cameras:
      - {id: busy, source: busy.mp4, fps: 2}
      - {id: quiet, source: quiet.mp4, fps: 2}
      - {id: laggy, source: laggy.mp4, fps: 2}
      - {id: fresh, source: fresh.mp4, fps: 2}
  - id: never
    branch: eu
    timezone: Asia/Ho_Chi_Minh
    hours: {weekly: {}}
    cameras:
      - {id: door, source: door.mp4, fps: 2}
"""


def load(tmp_path: Path, text_: str = REGISTRY) -> Registry:
    path = tmp_path / "stores.yaml"
    path.write_text(textwrap.dedent(text_))
    return load_registry(path)


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Registry:
    loaded = load(tmp_path)
    sync_registry(engine, loaded)
    return loaded


@pytest.fixture
def reader(engine: Engine, registry: Registry) -> Iterator[Connection]:
    """A connection with exactly the read-only role's rights (as `moodstream db create-reader` grants)."""
    role = f"ms_alert_reader_{uuid.uuid4().hex[:8]}"
    create_reader_role(engine, role, None)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET ROLE {role}"))
            yield conn
            conn.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


def test_sql_store_is_open_agrees_with_the_registry_every_half_hour(
    engine: Engine, registry: Registry
) -> None:
    # two weeks around the Paris DST change (29 March 2026) and the two exception dates
    instants = [
        datetime(2026, 3, 21, 0, 7, tzinfo=UTC) + timedelta(minutes=30 * i) for i in range(24 * 2 * 14)
    ]
    instants += [datetime(2026, 3, 30, 21, 59, 59, tzinfo=UTC), datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC)]
    with engine.connect() as conn:
        for store in registry.stores:
            rows = conn.execute(
                text("SELECT t, store_is_open(:s, t) FROM unnest(CAST(:ts AS timestamptz[])) AS t"),
                {"s": store.id, "ts": instants},
            ).all()
            wrong = [(t, sql) for t, sql in rows if sql != store.is_open(t)]
            assert not wrong, f"{store.id}: SQL and Python disagree at {wrong[:3]}"
    assert any(registry.stores[0].is_open(t) for t in instants)  # the check saw open and closed times
    assert not all(registry.stores[0].is_open(t) for t in instants)


def test_sync_rewrites_hours_only_when_they_change(engine: Engine, tmp_path: Path) -> None:
    assert "paris" in sync_registry(engine, load(tmp_path)).added
    assert sync_registry(engine, load(tmp_path)).lines() == []
    later = REGISTRY.replace('sat: ["09:00-24:00"]', 'sat: ["10:00-20:00"]')
    assert sync_registry(engine, load(tmp_path, later)).updated == ["paris"]
    without = later.replace("    hours: {weekly: {}}\n", "")
    report = sync_registry(engine, load(tmp_path, without))
    assert report.updated == ["never"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT store_is_open('never', now())")).scalar_one() is True
        saturday = datetime(2026, 4, 4, 9, 30, tzinfo=UTC)  # 11:30 in Paris
        assert conn.execute(text("SELECT store_is_open('paris', :t)"), {"t": saturday}).scalar_one()


def seed(engine: Engine) -> None:
    """Counts relative to now(): what each alert should see."""
    rows = [
        # store, camera, bucket age, updated age, last frame age (minutes), readable, happy, negative (sad)
        ("always", "busy", 1, 0.1, 0.2, 0, 0, 0),
        ("always", "quiet", 25, 20, 20.1, 0, 0, 0),  # silent 20 minutes in an open store
        ("always", "laggy", 6, 0.5, 5.5, 0, 0, 0),  # committed just now, captured 5 minutes ago
        ("never", "door", 120, 120, 120, 0, 0, 0),  # silent 2 hours, but its store is never open
        ("paris", "door", 60 * 24 * 5, 60 * 24 * 5, 60 * 24 * 5, 0, 0, 0),
        # satisfaction: "always" had 300 readable visits at +0.5 over the past days, now 40 at -0.5
        ("always", "busy", 60 * 24 * 3, 60 * 24 * 3, 60 * 24 * 3, 300, 200, 50),
        ("always", "busy", 60, 60, 60, 40, 5, 25),
        # "never" steady: +0.5 before, +0.45 now (a small dip must not fire)
        ("never", "door", 60 * 24 * 4, 60 * 24 * 4, 60 * 24 * 4, 400, 250, 50),
        ("never", "door", 30, 30, 30, 40, 22, 4),
    ]
    with engine.begin() as conn:
        for store, camera, bucket, updated, last, readable, happy, sad in rows:
            conn.execute(
                text(
                    "INSERT INTO emotion_counts (bucket_start, store_id, camera_id, bucket_seconds, frames, "
                    "visits, readable_visits, visits_happy, visits_sad, last_frame_at, updated_at) VALUES ("
                    "date_trunc('minute', now()) - make_interval(mins => :b), :s, :c, 60, 1, :r, :r, :h, :n, "
                    "now() - make_interval(secs => :l * 60), now() - make_interval(secs => :u * 60))"
                ),
                {
                    "b": bucket,
                    "s": store,
                    "c": camera,
                    "u": updated,
                    "l": last,
                    "r": readable,
                    "h": happy,
                    "n": sad,
                },
            )
        conn.execute(text("UPDATE cameras SET created_at = now() - interval '1 day' WHERE id <> 'fresh'"))
        losses = [("always", "busy", 5, 2, 1), ("always", "quiet", 60, 4, 0), ("never", "door", 3, 0, 0)]
        for store, camera, age, shed, dead in losses:
            conn.execute(
                text(
                    "INSERT INTO frame_losses (bucket_start, store_id, camera_id, shed, dead) VALUES "
                    "(date_trunc('minute', now()) - make_interval(mins => :a), :s, :c, :shed, :dead)"
                ),
                {"a": age, "s": store, "c": camera, "shed": shed, "dead": dead},
            )


def firing(reader: Connection, signal: str) -> dict[str, Any]:
    """Run a provisioned rule's SQL as the reader; the rows its threshold fires on, by store/camera."""
    rule = grafana_rules()[SIGNALS[signal]]
    rows = [dict(r._mapping) for r in reader.execute(text(rule.sql))]
    for row in rows:
        numbers = [v for v in row.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        assert len(numbers) == 1, f"{signal}: a Grafana alert query needs exactly one numeric column: {row}"
        assert all(isinstance(v, str) for v in row.values() if v is not numbers[0]), row
    return {
        "/".join(str(row[k]) for k in ("store_id", "camera_id") if k in row): value
        for row in rows
        for value in [next(v for v in row.values() if isinstance(v, float))]
        if rule.fires(value)
    }


def test_silent_camera_fires_only_during_opening_hours(
    engine: Engine, registry: Registry, reader: Connection
) -> None:
    seed(engine)
    fired = firing(reader, "camera-silent")
    now = reader.execute(text("SELECT now()")).scalar_one()
    paris = registry.stores[0]
    paris_open = paris.is_open(now) and paris.is_open(now - timedelta(minutes=15))
    # never/door: silent 2 hours, store closed; always/fresh: registered just now, nothing counted yet
    assert set(fired) - {"paris/door"} == {"always/quiet"}
    assert ("paris/door" in fired) == paris_open  # silent 5 days: fires exactly when Paris is open
    assert 1190 < fired["always/quiet"] < 1300


def test_pipeline_lag_lost_frames_and_satisfaction_drop(engine: Engine, reader: Connection) -> None:
    seed(engine)
    lag = firing(reader, "pipeline-lag")
    assert set(lag) == {"always/laggy"} and 290 < lag["always/laggy"] < 310
    assert firing(reader, "frames-lost") == {"always/busy": 3.0}  # the loss of an hour ago is past
    drop = firing(reader, "satisfaction-drop")
    assert set(drop) == {"always"} and drop["always"] == pytest.approx(-1.0)
