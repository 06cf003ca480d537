"""Fleet state read back from Redis and PostgreSQL: per-camera progress, stream backlog, per-store totals.

Used by the live view of ``moodstream run`` and by ``moodstream status``; everything here only reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis
from rich.table import Table
from sqlalchemy import Engine, func, select

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
    classified: int = 0
    counted: int = 0
    faces: int = 0
    errors: int = 0
    dead: int = 0
    shed: int = 0
    last_error: str = ""

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
        stage: read_stage_counters(client, names, stage) for stage in ("ingest", "detector", "classifier")
    }
    stats["aggregator"] = read_stage_counters(client, names, "aggregator")
    stats["losses"] = read_stage_counters(client, names, "losses")
    raw_states: Any = client.hgetall(names.cameras)
    states = {k.decode(): json.loads(v) for k, v in raw_states.items()}
    labels = sorted({*states, *(label for s in stats.values() for label in s)} - {"?/?"})
    rows: list[CameraProgress] = []
    for label in labels:
        state = states.get(label, {})
        row = CameraProgress(
            label=label,
            state=state.get("state", "-"),
            read=stats["ingest"].get(label, {}).get("frames_out", 0),
            detected=stats["detector"].get(label, {}).get("frames_out", 0),
            classified=stats["classifier"].get(label, {}).get("frames_out", 0),
            counted=stats["aggregator"].get(label, {}).get("frames_in", 0),
            faces=stats["classifier"].get(label, {}).get("faces", 0),
            errors=int(state.get("errors", 0)),
            dead=stats["losses"].get(label, {}).get("dead", 0),
            shed=stats["losses"].get(label, {}).get("shed", 0),
            last_error=str(state.get("last_error", "")),
        )
        rows.append(row)
    return rows


def group_backlogs(client: redis.Redis, names: StreamNames, groups: dict[str, str]) -> list[GroupBacklog]:
    """Backlog of each (stage -> group) on its input stream (missing streams are skipped)."""
    streams = {"detector": names.frames, "classifier": names.faces, "aggregator": names.emotions}
    streams["losses"] = names.dead
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
    """A rich table: one row per camera (state, frames read / detected / counted, faces, lag, errors)."""
    table = Table(title=title, title_justify="left")
    for column in (
        "camera",
        "state",
        "read",
        "detected",
        "counted",
        "faces",
        "lag",
        "errors",
        "dead",
        "shed",
    ):
        table.add_column(column, justify="left" if column in ("camera", "state") else "right")
    for r in rows:
        table.add_row(
            r.label,
            r.state,
            *(str(v) for v in (r.read, r.detected, r.counted, r.faces, r.lag, r.errors, r.dead, r.shed)),
        )
    return table


@dataclass
class StoreTotals:
    """Counts of one store over everything in ``emotion_counts``."""

    store_id: str
    frames: int = 0
    faces: int = 0
    emotions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, 0))

    @property
    def satisfaction(self) -> float | None:
        """Satisfaction index of the store (None without faces)."""
        return satisfaction_index(self.emotions)


def store_totals(engine: Engine, store_ids: list[str] | None = None) -> list[StoreTotals]:
    """Per-store sums of ``emotion_counts`` (optionally only some stores)."""
    t = tables.emotion_counts
    columns = [func.sum(t.c.frames), func.sum(t.c.faces), *(func.sum(t.c[f"faces_{e}"]) for e in EMOTIONS)]
    query = select(t.c.store_id, *columns).group_by(t.c.store_id).order_by(t.c.store_id)
    if store_ids:
        query = query.where(t.c.store_id.in_(store_ids))
    out: list[StoreTotals] = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            values = [int(v or 0) for v in row[1:]]
            out.append(
                StoreTotals(row[0], values[0], values[1], dict(zip(EMOTIONS, values[2:], strict=True)))
            )
    return out


def store_table(totals: list[StoreTotals]) -> Table:
    """A rich table of per-store totals with the satisfaction index."""
    table = Table(title="per-store summary", title_justify="left")
    for column in ("store", "frames", "faces", *EMOTIONS, "satisfaction"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for s in totals:
        index = "-" if s.satisfaction is None else f"{s.satisfaction:+.3f}"
        table.add_row(s.store_id, str(s.frames), str(s.faces), *(str(s.emotions[e]) for e in EMOTIONS), index)
    return table
