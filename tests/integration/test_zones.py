"""Zones end to end on real PostgreSQL: a camera's frames through the detector, tracker and classifier
stage handlers (wire-encoded entries between them) into ``zone_visits`` give exactly the per-zone visits
`moodstream analyze` reports for the same file and settings; `report --zone` reads them and names the
known zones when asked for an unknown one. A masked area's faces are never counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from moodstream.aggregator import ReportRequest, UnknownScopeError, apply_emotions, fetch_report
from moodstream.cli.analyze import analyze_file
from moodstream.common.streams import StreamNames
from moodstream.ingest import CameraReader, IngestConfig
from moodstream.runtime.camera_settings import RegistryCameras
from moodstream.runtime.database import sync_registry
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.processes import registry_cameras
from moodstream.runtime.scene import CameraScene
from moodstream.runtime.stages.classifier import ClassifierStage
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.stages.tracker import TrackerStage
from moodstream.runtime.stages.transactions import transaction
from moodstream.runtime.worker import Entry
from moodstream.schemas import tables
from moodstream.schemas.messages import EmotionsMessage, FrameMessage
from moodstream.schemas.registry import load_registry
from moodstream.schemas.visit_config import ReorderConfig

FPS = 4.0
VIDEO = "face-demographics-walking.gif"


def write_registry(path: Path, video: Path) -> Path:
    """One camera, zones left and right of the frame's middle, a mask over its top right corner."""
    path.write_text(
        f"""\
version: 1
pipeline: {{bucket: 10s}}
stores:
  - id: s1
    branch: b1
    timezone: UTC
    cameras:
      - id: door
        source: {video}
        fps: {FPS}
        masks:
          - [[0.75, 0], [1, 0], [1, 0.3], [0.75, 0.3]]
        zones:
          - id: left
            polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
          - id: right
            polygon: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]
"""
    )
    return path


def pipeline_emotions(registry: Path) -> list[EmotionsMessage]:
    """The camera's frames as ingest publishes them (its reader: sampling, motion regions, JPEG), through
    the three stage handlers."""
    (spec,) = registry_cameras(load_registry(registry))
    published: list[FrameMessage] = []
    CameraReader(spec, IngestConfig(realtime=False), published.append).run(threading.Event())
    cameras = RegistryCameras(registry)
    analyzer = build_analyzer(AnalysisConfig())
    detector = DetectorStage(analyzer, cameras.scene)
    clock = [1_000.0]
    tracker = TrackerStage(cameras, ReorderConfig(idle_flush_seconds=5), lambda: clock[0], cameras.zones)
    classifier = ClassifierStage(analyzer)
    counters = StageCounters("test", StreamNames("test:"))
    faces, tracks = [], []
    for seq, message in enumerate(published):
        faces += detector.handle([Entry(f"{seq}-0", message.encode())], counters).outputs
    for i, fields in enumerate(faces):
        tracks += tracker.handle([Entry(f"{i}-1", fields)], counters).outputs
    clock[0] += 10  # the camera went idle: its open visits end
    tracks += tracker.tick(clock[0], counters).outputs
    out = classifier.handle([Entry(f"{i}-2", f) for i, f in enumerate(tracks)], counters).outputs
    return [EmotionsMessage.decode(f) for f in out]


def test_zone_visits_in_postgresql_equal_analyze_and_report_by_zone(
    shared_data: Path, engine: Engine, tmp_path: Path
) -> None:
    video = shared_data / "video" / VIDEO
    registry = write_registry(tmp_path / "stores.yaml", video)
    loaded = load_registry(registry)
    scene = CameraScene.of(loaded.camera("s1", "door"), "s1")
    summary = analyze_file(
        video,
        FPS,
        build_analyzer(AnalysisConfig()),
        85,
        config=loaded.visit_config("s1", "door"),
        scene=scene,
    )
    want = {z: (row["visits"], row["readable"]) for z, row in summary.as_json()["zones"].items()}
    assert want["left"][0] > 0 and want["right"][0] > 0, want

    messages = pipeline_emotions(registry)
    sync_registry(engine, loaded)
    with transaction(engine) as conn:
        apply_emotions(conn, messages, 10)
    t = tables.zone_visits
    query = select(t.c.zone, func.sum(t.c.visits), func.sum(t.c.readable_visits)).group_by(t.c.zone)
    with engine.connect() as conn:
        got = {str(zone): (int(v), int(r)) for zone, v, r in conn.execute(query)}
        frames = conn.scalar(select(func.sum(tables.emotion_counts.c.frames)))
    assert got == {z: n for z, n in want.items() if n[0]}, (got, want)
    assert frames == summary.frames
    assert sum(len(m.visits) for m in messages) == summary.as_json()["visits"]["count"]

    day = datetime.fromtimestamp(messages[0].captured_ms / 1000, UTC).date()
    first, last = day - timedelta(days=1), day + timedelta(days=1)  # the clip may straddle midnight
    with engine.connect() as conn:
        report = fetch_report(conn, ReportRequest(date_from=first, date_to=last, zone="left"))
        assert report.overall().visits == want["left"][0]
        assert report.overall().faces == 0  # faces are not counted per zone
        with pytest.raises(UnknownScopeError, match=r"unknown zone 'checkout' .*: left, right\)"):
            fetch_report(conn, ReportRequest(date_from=first, date_to=last, zone="checkout"))


def test_faces_in_a_masked_area_are_never_counted(shared_data: Path, engine: Engine, tmp_path: Path) -> None:
    """The whole frame masked: frames are counted, no face, no visit, no zone visit."""
    video = shared_data / "video" / VIDEO
    registry = write_registry(tmp_path / "stores.yaml", video)
    text = registry.read_text().replace(
        "[[0.75, 0], [1, 0], [1, 0.3], [0.75, 0.3]]", "[[0, 0], [1, 0], [1, 1], [0, 1]]"
    )
    registry.write_text(text)
    messages = pipeline_emotions(registry)
    with transaction(engine) as conn:
        apply_emotions(conn, messages, 10)
    with engine.connect() as conn:
        row = conn.execute(
            select(func.sum(tables.emotion_counts.c.frames), func.sum(tables.emotion_counts.c.faces),
                   func.sum(tables.emotion_counts.c.visits))
        ).one()  # fmt: skip
        zone_rows = conn.scalar(select(func.count()).select_from(tables.zone_visits))
    assert row[0] == len(messages) > 0 and row[1] == 0 and row[2] == 0 and zone_rows == 0
