"""Ingest sharded by store on a real Redis: two ingest processes' worth of `run_ingest`, each with its own
`--stores` set, publish every camera of the registry exactly once between them."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import redis

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest import IngestConfig
from moodstream.runtime.processes import RunOptions, run_ingest
from moodstream.schemas.messages import FrameMessage
from tests.integration.helpers import xrange_all
from tests.integration.test_ingest_supervisor import write_video

FRAMES = 6


def registry(tmp_path: Path) -> Path:
    video = write_video(tmp_path / "v.mp4", frames=FRAMES)
    lines = ["version: 1", "stores:"]
    for store in ("s1", "s2", "s3"):
        lines += [f"  - id: {store}", "    branch: b", "    timezone: UTC", "    cameras:"]
        lines += [f"      - {{id: door, source: {video}, fps: 10, loop: false}}"]
    path = tmp_path / "stores.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ingest(redis_url: str, prefix: str, path: Path, stores: tuple[str, ...]) -> None:
    """One ingest shard until its (file) cameras have ended."""
    options = RunOptions(
        redis_url=redis_url,
        prefix=prefix,
        registry=path,
        log_level="INFO",
        ingest_stores=stores,
        exit_when_done=True,
        ingest=IngestConfig(realtime=False, reload_interval_s=0.1),
    )
    run_ingest(options, threading.Event())


def test_two_shards_publish_every_store_once(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    path = registry(tmp_path)
    shards = [("s1",), ("s2", "s3")]
    threads = [threading.Thread(target=ingest, args=(redis_url, redis_prefix, path, s)) for s in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    client: redis.Redis = connect_redis(redis_url)
    try:
        entries = xrange_all(client, StreamNames(redis_prefix).frames)
        published = Counter((m.key.store_id, m.key.seq) for m in (FrameMessage.decode(f) for _, f in entries))
    finally:
        client.close()
    stores = {store for store, _ in published}
    assert stores == {"s1", "s2", "s3"}
    assert max(published.values()) == 1, "a frame was published by two shards"
    assert Counter(store for store, _ in published) == {"s1": FRAMES, "s2": FRAMES, "s3": FRAMES}
