"""`moodstream status`: live workers, stream backlogs, per-camera progress, latency and per-store totals
(visits first: visits, readable visits, dwell, satisfaction per visit; then faces).

Reads the servers named by MOODSTREAM_REDIS_URL / MOODSTREAM_DATABASE_URL, or the embedded ones of
the data directory when they are running (it never starts a server).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from moodstream.common.redaction import redact_url

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _urls() -> tuple[str, str | None]:
    from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
    from moodstream.runtime.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        if not embedded.is_running():
            raise _fail(f"no MOODSTREAM_REDIS_URL and no embedded Redis running under {settings.data_dir}")
        redis_url = embedded.url
    database_url = settings.database_url
    if database_url is None:
        postgres = EmbeddedPostgres(settings.data_dir)
        database_url = postgres.url() if postgres.is_running() else None
    return redis_url, database_url


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def collect_status(redis_url: str, database_url: str | None, prefix: str) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data."""
    from moodstream.common.streams import StreamNames, connect_redis
    from moodstream.runtime.processes import GROUPS
    from moodstream.runtime.progress import camera_progress, group_backlogs, store_totals
    from moodstream.runtime.stages.forwarder import store_silence

    names = StreamNames(prefix)
    client = connect_redis(redis_url)
    workers = []
    for key in client.scan_iter(match=names.heartbeat_pattern(), count=500):
        raw: Any = client.hgetall(key)
        beat = {k.decode(): v.decode() for k, v in raw.items()}
        if beat:
            beat["age_s"] = str(int(time.time()) - int(beat.get("beat", "0")))
            workers.append(beat)
    latencies: Any = client.lrange(names.latency, 0, -1)
    values = [float(v) for v in latencies]
    status: dict[str, Any] = {
        "redis": redact_url(redis_url),
        "workers": sorted(workers, key=lambda w: (w.get("stage", ""), w.get("consumer", ""))),
        "streams": [asdict(b) for b in group_backlogs(client, names, GROUPS)],
        "cameras": [{**asdict(c), "lag": c.lag} for c in camera_progress(client, names)],
        "latency_ms": {
            "samples": len(values),
            "p50": _percentile(values, 0.5),
            "p95": _percentile(values, 0.95),
        },
        "stores": None,
        "edge_stores": [asdict(s) for s in store_silence(client, names)],
    }
    client.close()
    if database_url is not None:
        import sqlalchemy.exc

        from moodstream.runtime.database import DatabaseError, create_database_engine

        try:
            engine = create_database_engine(database_url)
            status["stores"] = [
                {
                    **asdict(s),
                    "satisfaction_index": s.satisfaction,
                    "face_satisfaction_index": s.face_satisfaction,
                    "mean_dwell_seconds": s.mean_dwell_seconds,
                }
                for s in store_totals(engine)
            ]
            engine.dispose()
        except DatabaseError as exc:
            status["stores_error"] = str(exc)
        except sqlalchemy.exc.ProgrammingError:
            status["stores_error"] = "the database has no moodstream tables yet (run `moodstream db upgrade`)"
    return status


SILENT_AFTER_S = 60.0
"""A store box whose results have not arrived for this long is shown as silent."""


def _edge_table(rows: list[dict[str, Any]]) -> Table:
    """Store boxes (store-edge mode) as the central Redis sees them, longest silent first."""
    table = Table(title="store boxes (results forwarded to this Redis)", title_justify="left")
    for column in ("store", "last forward (UTC)", "silent for", "state"):
        table.add_column(column)
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["last_forward_ms"] / 1000))
        state = "SILENT" if row["silent_s"] >= SILENT_AFTER_S else "ok"
        table.add_row(row["store_id"], when, f"{row['silent_s']:.0f}s", state)
    return table


def _tables(status: dict[str, Any]) -> list[RenderableType]:
    from moodstream.runtime.progress import CameraProgress, StoreTotals, progress_table, store_table

    workers = Table(title="workers", title_justify="left")
    for column in ("stage", "consumer", "processed", "lag", "last beat"):
        workers.add_column(column)
    for w in status["workers"]:
        workers.add_row(w["stage"], w["consumer"], w["processed"], w["lag"], f"{w['age_s']}s ago")
    streams = Table(title="streams", title_justify="left")
    for column in ("stream", "group", "length", "pending", "unread", "consumers"):
        streams.add_column(column)
    for s in status["streams"]:
        cells = (s["stream"], s["group"], s["length"], s["pending"], "yes" if s["undelivered"] else "no")
        streams.add_row(*(str(c) for c in (*cells, s["consumers"])))
    cameras = [CameraProgress(**{k: v for k, v in c.items() if k != "lag"}) for c in status["cameras"]]
    out: list[RenderableType] = [workers, streams, progress_table(cameras, title="cameras")]
    if status.get("edge_stores"):
        out.append(_edge_table(status["edge_stores"]))
    if status["stores"] is not None:
        known = set(StoreTotals.__dataclass_fields__)
        out.append(
            store_table([StoreTotals(**{k: v for k, v in s.items() if k in known}) for s in status["stores"]])
        )
    return out


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show live workers, stream backlogs, per-camera progress, latency and per-store totals."""
    import redis

    from moodstream.runtime.settings import Settings

    redis_url, database_url = _urls()
    try:
        data = collect_status(redis_url, database_url, Settings.from_env().stream_prefix)
    except redis.RedisError as exc:
        raise _fail(f"Redis at {redact_url(redis_url)} unreachable: {exc}") from None
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    for table in _tables(data):
        console.print(table)
    if "stores_error" in data:
        err_console.print(f"per-store totals unavailable: {data['stores_error']}")
    latency = data["latency_ms"]
    if latency["samples"]:
        console.print(
            f"capture -> commit latency over the last {latency['samples']} frames: "
            f"p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms"
        )


def register(app: typer.Typer) -> None:
    """Add ``status``."""
    app.command("status")(status)
