"""Small helpers shared by the integration tests: stream and history queries, worker threads, stage
process environments, waiting, and the server-kind and role plumbing several test modules repeat."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from moodstream.runtime.worker import StreamWorker
from moodstream.schemas import tables


def xrange_all(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of a stream as (id, fields)."""
    entries: Any = client.xrange(stream)
    return list(entries)


def pending_of_group(client: redis.Redis, stream: str, group: str) -> int:
    """Entries ``group`` holds unacknowledged on ``stream`` (0 while the stream or group is missing)."""
    try:
        return int(client.xpending(stream, group)["pending"])
    except redis.ResponseError:
        return 0


def run_worker_until(
    worker: StreamWorker, done: Callable[[], bool], timeout: float = 20.0, poll: float = 0.02
) -> bool:
    """Run ``worker`` in a thread until ``done()`` holds or ``timeout`` passes, then stop it (joined for
    up to 10 s). Returns whether the thread has stopped; the caller asserts on ``done()`` itself."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(poll)
    stop.set()
    thread.join(10)
    return not thread.is_alive()


def skip_mixed_server_kinds(request: pytest.FixtureRequest) -> None:
    """Skip a test parametrized with an embedded Redis and an external PostgreSQL (or the reverse):
    mixed pairs add time and no coverage to the end-to-end and fault tests."""
    params = getattr(request.node, "callspec", None)
    kinds = {params.params.get(k) for k in ("redis_url", "admin_database_url")} if params else set()
    if len(kinds - {None}) > 1:
        pytest.skip("mixed embedded/external server pair: covered by the matching pairs")


def stage_env(redis_url: str, database_url: str, prefix: str) -> dict[str, str]:
    """The environment a `moodstream <stage>` process is started with: this one plus the servers,
    the stream prefix and INFO logging."""
    return {
        **os.environ,
        "MOODSTREAM_REDIS_URL": redis_url,
        "MOODSTREAM_DATABASE_URL": database_url,
        "MOODSTREAM_STREAM_PREFIX": prefix,
        "MOODSTREAM_LOG_LEVEL": "INFO",
    }


def history(engine: Engine) -> dict[str, Any]:
    """What PostgreSQL holds: applied frame identities, frames counted, shed and dead."""
    with engine.connect() as conn:
        applied = conn.execute(select(tables.applied_frames.c.camera_id, tables.applied_frames.c.seq)).all()
        counted = conn.scalar(select(func.coalesce(func.sum(tables.emotion_counts.c.frames), 0)))
        shed = conn.scalar(select(func.coalesce(func.sum(tables.frame_losses.c.shed), 0)))
        dead = conn.scalar(select(func.coalesce(func.sum(tables.frame_losses.c.dead), 0)))
        per_camera = dict(
            conn.execute(
                select(tables.frame_losses.c.camera_id, func.sum(tables.frame_losses.c.shed)).group_by(
                    tables.frame_losses.c.camera_id
                )
            ).all()
        )
    return {
        "applied": [(str(c), int(s)) for c, s in applied],
        "counted": int(counted or 0),
        "shed": int(shed or 0),
        "dead": int(dead or 0),
        "shed_per_camera": {str(k): int(v) for k, v in per_camera.items()},
    }


def assert_history(h: dict[str, Any], published: set[tuple[str, int]]) -> None:
    """counted + dead + shed = published, every published frame accounted exactly once, nothing else."""
    assert len(h["applied"]) == len(set(h["applied"])), "a frame identity was recorded twice"
    assert set(h["applied"]) == published
    assert h["counted"] + h["dead"] + h["shed"] == len(published)


def drop_role(engine: Engine, role: str) -> None:
    """Drop a PostgreSQL role and everything it owns or was granted."""
    with engine.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


def refused(engine: Engine, statement: str, error: type[DBAPIError]) -> BaseException | None:
    """Run ``statement`` on ``engine``, which must raise ``error``; the driver's exception behind it."""
    with engine.connect() as conn, pytest.raises(error) as info:
        conn.execute(text(statement))
    return info.value.orig


def head_revision() -> str:
    """The newest Alembic revision of the shipped migrations (what `moodstream db upgrade` reaches)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from moodstream.runtime.database import MIGRATIONS_LOCATION

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@contextmanager
def running(workers: list[StreamWorker], join_s: float = 20.0) -> Iterator[None]:
    """Run workers in threads for the duration of the block (stopped, and joined for ``join_s``, after)."""
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(join_s)
