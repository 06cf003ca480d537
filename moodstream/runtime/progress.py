"""Fleet state read back from Redis and PostgreSQL: per-camera progress, stream backlog, per-store totals.

Used by the live view of ``moodstream run`` and by ``moodstream status``; everything here only reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from rich.console import Group
from rich.table import Table
from sqlalchemy import Engine, func, select

from moodstream.common.redaction import redact_text
from moodstream.common.streams import StreamNames
from moodstream.runtime.metrics import read_stage_counters
from moodstream.schemas import tables
from moodstream.schemas.labels import EMOTIONS, satisfaction_index


@dataclass
class CameraProgress:
    """One camera's progress through the stages."""

    label: str
    state: str = "-"
    read: int = 0
    detected: int = 0
    tracked: int = 0
    classified: int = 0
    counted: int = 0
    visits: int = 0
    faces: int = 0
    late: int = 0
    errors: int = 0
    dead: int = 0
    shed: int = 0
    last_error: str = ""
    ingest: str = ""
    """The ingest reading the camera (the holder of its lease)."""
    waiting: int = 0
    """Other ingests waiting to take the camera over (they read it only when this one stops)."""
    done: float | None = None
    """Recorded footage: fraction of the file read by the ingest (None: a live camera)."""

    @property
    def state_text(self) -> str:
        """The state, with the share of a footage file read so far (e.g. ``online 42%``)."""
        return self.state if self.done is None else f"{self.state} {self.done:.0%}"

    @property
    def lag(self) -> int:
        """Frames read but not yet counted, dead or shed."""
        return max(0, self.read - self.counted - self.dead - self.shed)


@dataclass
class GroupBacklog:
    """A consumer group's backlog on its stream."""

    stream: str
    group: str
    length: int
    pending: int
    undelivered: bool
    consumers: int


def camera_progress(client: redis.Redis, names: StreamNames) -> list[CameraProgress]:
    """Per-camera progress from the stats hashes and the ingest's camera states."""
    stats = {
        stage: read_stage_counters(client, names, stage)
        for stage in ("ingest", "detector", "tracker", "classifier")
    }
    stats["aggregator"] = read_stage_counters(client, names, "aggregator")
    stats["losses"] = read_stage_counters(client, names, "losses")
    raw_states: Any = client.hgetall(names.cameras)
    states = {k.decode(): json.loads(v) for k, v in raw_states.items()}
    waiting = standby_ingests(client, names)
    labels = sorted({*states, *waiting, *(label for s in stats.values() for label in s)} - {"?/?"})
    rows: list[CameraProgress] = []
    for label in labels:
        state = states.get(label, {})
        row = CameraProgress(
            label=label,
            state=state_text(state),
            read=stats["ingest"].get(label, {}).get("frames_out", 0),
            detected=stats["detector"].get(label, {}).get("frames_out", 0),
            tracked=stats["tracker"].get(label, {}).get("frames_out", 0),
            classified=stats["classifier"].get(label, {}).get("frames_out", 0),
            counted=stats["aggregator"].get(label, {}).get("frames_in", 0),
            visits=stats["aggregator"].get(label, {}).get("visits", 0),
            faces=stats["aggregator"].get(label, {}).get("faces", 0),
            late=stats["tracker"].get(label, {}).get("frames_late", 0),
            errors=int(state.get("errors", 0)),
            dead=stats["losses"].get(label, {}).get("dead", 0),
            shed=stats["losses"].get(label, {}).get("shed", 0),
            last_error=redact_text(str(state.get("last_error", ""))),
            done=_fraction(state.get("progress")),
            ingest=str(state.get("ingest", "")),
            waiting=len(waiting.get(label, [])),
        )
        rows.append(row)
    return rows


def state_text(state: dict[str, Any]) -> str:
    """A camera's state as shown: ``online``, ``reconnecting``, ..., or ``closed until <local time>``
    for a camera whose store is outside its opening hours (ingest does not read it)."""
    text = str(state.get("state", "-"))
    if text == "closed":
        opens = state.get("opens")
        return f"closed until {opens}" if opens else "closed (opening hours)"
    return text


def _fraction(value: object) -> float | None:
    """A progress value from the camera state JSON, clipped to [0, 1] (None when absent or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(1.0, max(0.0, float(value)))


STANDBY_FRESH_S = 30.0
"""A standby entry not refreshed for this long belongs to an ingest that is gone."""


def standby_ingests(
    client: redis.Redis, names: StreamNames, now: float | None = None
) -> dict[str, list[str]]:
    """Camera label -> the ingests waiting for its lease (entries refreshed in the last STANDBY_FRESH_S)."""
    raw: Any = client.hgetall(names.standby)
    now = time.time() if now is None else now
    out: dict[str, list[str]] = {}
    for value in raw.values():
        try:
            entry = json.loads(value)
            fresh = now - float(entry["updated"]) < STANDBY_FRESH_S
            label, ingest = str(entry["label"]), str(entry["ingest"])
        except (ValueError, KeyError, TypeError):
            continue
        if fresh:
            out.setdefault(label, []).append(ingest)
    return out


def group_backlogs(client: redis.Redis, names: StreamNames, groups: dict[str, str]) -> list[GroupBacklog]:
    """Backlog of each (stage -> group) on its input stream (missing streams are skipped)."""
    streams = {
        "detector": names.frames,
        "tracker": names.faces,
        "classifier": names.tracks,
        "aggregator": names.emotions,
    }
    streams["losses"] = names.dead
    streams["forwarder"] = names.emotions  # a store box's forwarder (store-edge mode): results still to send
    out: list[GroupBacklog] = []
    for stage, group in groups.items():
        stream = streams[stage]
        try:
            info: Any = client.xinfo_stream(stream)
            group_infos: Any = client.xinfo_groups(stream)
        except redis.ResponseError:
            continue
        last = info.get("last-generated-id")
        for g in group_infos:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == group:
                out.append(
                    GroupBacklog(
                        stream=stream,
                        group=group,
                        length=int(info.get("length", 0)),
                        pending=int(g.get("pending", 0)),
                        undelivered=int(info.get("length", 0)) > 0 and g.get("last-delivered-id") != last,
                        consumers=int(g.get("consumers", 0)),
                    )
                )
    return out


def drained(client: redis.Redis, names: StreamNames, groups: dict[str, str]) -> bool:
    """True when every group has read everything on its stream and holds nothing pending."""
    backlogs = group_backlogs(client, names, groups)
    return all(b.pending == 0 and not b.undelivered for b in backlogs)


def progress_table(rows: list[CameraProgress], title: str = "moodstream") -> Table:
    """A rich table: one row per camera (state, frames read / detected / tracked / counted, visits ended,
    faces counted, late frames, lag, errors, losses)."""
    table = Table(title=title, title_justify="left")
    columns = ("camera", "state", "read", "detected", "tracked", "counted", "visits", "faces", "late")
    for column in (*columns, "lag", "errors", "dead", "shed"):
        table.add_column(column, justify="left" if column in ("camera", "state") else "right")
    for r in rows:
        values = (r.read, r.detected, r.tracked, r.counted, r.visits, r.faces, r.late, r.lag, r.errors)
        state = f"{r.state_text} ({r.waiting} other ingest waiting)" if r.waiting else r.state_text
        table.add_row(r.label, state, *(str(v) for v in (*values, r.dead, r.shed)))
    return table


@dataclass
class StoreTotals:
    """Counts of one store over everything in ``emotion_counts``: visits first, then faces."""

    store_id: str
    frames: int = 0
    visits: int = 0
    readable_visits: int = 0
    dwell_seconds: float = 0.0
    visit_emotions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, 0))
    faces: int = 0
    readable_faces: int = 0
    face_emotions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, 0))

    @property
    def satisfaction(self) -> float | None:
        """Satisfaction index per visit, over readable visits (None without one): the headline."""
        return satisfaction_index(self.visit_emotions, self.readable_visits)

    @property
    def face_satisfaction(self) -> float | None:
        """Satisfaction index over classified faces (None without one)."""
        return satisfaction_index(self.face_emotions)

    @property
    def mean_dwell_seconds(self) -> float | None:
        """Mean dwell time of the visits (None without visits)."""
        return self.dwell_seconds / self.visits if self.visits else None


def store_totals(engine: Engine, store_ids: list[str] | None = None) -> list[StoreTotals]:
    """Per-store sums of ``emotion_counts`` (optionally only some stores)."""
    t = tables.emotion_counts
    names = (
        "frames", "visits", "readable_visits", "dwell_seconds_sum", *tables.VISIT_EMOTION_COLUMNS,
        "faces", "readable_faces", *tables.FACE_EMOTION_COLUMNS,
    )  # fmt: skip
    query = select(t.c.store_id, *(func.coalesce(func.sum(t.c[n]), 0) for n in names)).group_by(t.c.store_id)
    if store_ids:
        query = query.where(t.c.store_id.in_(store_ids))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.store_id)).all()
    return [_totals(row[0], dict(zip(names, row[1:], strict=True))) for row in rows]


def _totals(store_id: str, v: dict[str, Any]) -> StoreTotals:
    return StoreTotals(
        store_id,
        frames=int(v["frames"]),
        visits=int(v["visits"]),
        readable_visits=int(v["readable_visits"]),
        dwell_seconds=float(v["dwell_seconds_sum"]),
        visit_emotions={e: int(v[f"visits_{e}"]) for e in EMOTIONS},
        faces=int(v["faces"]),
        readable_faces=int(v["readable_faces"]),
        face_emotions={e: int(v[f"faces_{e}"]) for e in EMOTIONS},
    )


def _index(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def store_table(totals: list[StoreTotals]) -> Group:
    """Per-store totals, visits first (readable, mean dwell, visits per emotion, satisfaction per visit),
    then a second table of frames and faces (detections, not people; satisfaction per classified face)."""
    visits = Table(title="per-store summary: visits (people)", title_justify="left")
    for column in ("store", "visits", "readable", "dwell avg", *EMOTIONS, "satisfaction"):
        visits.add_column(column, justify="left" if column == "store" else "right", no_wrap=column == "store")
    faces = Table(title="per-store faces (detections, not people)", title_justify="left")
    for column in ("store", "frames", "faces", "readable faces", "classified", "satisfaction / face"):
        faces.add_column(column, justify="left" if column == "store" else "right", no_wrap=column == "store")
    for s in totals:
        dwell = "-" if s.mean_dwell_seconds is None else f"{s.mean_dwell_seconds:.1f}s"
        emotions = (str(s.visit_emotions[e]) for e in EMOTIONS)
        visits.add_row(
            s.store_id, str(s.visits), str(s.readable_visits), dwell, *emotions, _index(s.satisfaction)
        )
        classified = sum(s.face_emotions.values())
        cells = (s.frames, s.faces, s.readable_faces, classified)
        faces.add_row(s.store_id, *(str(c) for c in cells), _index(s.face_satisfaction))
    return Group(visits, faces)
