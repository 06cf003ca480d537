"""Every hop accounted: with PostgreSQL down for longer than the stream caps last, nothing past the
``frames`` stream is trimmed unread. The stages wait (backpressure) and the pressure reaches the ingest,
which sheds frames and counts them per camera; afterwards ``counted + dead + shed = published`` holds per
camera, with no frame identity recorded twice.

The chain is the pipeline's (frames -> faces -> tracks -> emotions -> PostgreSQL, dead -> losses) run by the
real worker loop, publisher, aggregator and losses stages; the model stages are stand-ins that carry each
frame through as an entry without faces (as in test_faults.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, func, select

from moodstream.common.streams import StreamNames, connect_redis
from moodstream.ingest.publisher import FramePublisher
from moodstream.runtime.database import create_database_engine, migrate
from moodstream.runtime.embedded import EmbeddedPostgres
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.processes import DB_TRANSIENT, GROUPS
from moodstream.runtime.progress import drained as drained_groups
from moodstream.runtime.stages import AggregatorStage, LossesStage
from moodstream.runtime.worker import BatchResult, Entry, StreamWorker, WorkerConfig
from moodstream.schemas import tables
from tests.integration.helpers import assert_history, history
from tests.integration.test_faults import FramesToEmotions, publish, running, wait_until

CAP = 20
DEAD_CAP = 30
CAPPED = WorkerConfig(
    batch_size=4,
    block_ms=50,
    claim_idle_ms=100,
    claim_interval_s=0.1,
    heartbeat_s=0.5,
    output_maxlen=CAP,
    dead_maxlen=DEAD_CAP,
)


class Relay:
    """A middle hop (tracker, classifier) that passes each entry on unchanged."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        return BatchResult(outputs=[dict(entry.fields) for entry in entries])


def chain(url: str, names: StreamNames, engine: Engine) -> list[StreamWorker]:
    """frames -> faces -> tracks -> emotions -> counts, dead -> losses, every stream capped at CAP."""
    client = connect_redis(url)
    hops: list[tuple[str, str, Any, str | None]] = [
        (names.frames, "detector", FramesToEmotions(), names.faces),
        (names.faces, "tracker", Relay("tracker"), names.tracks),
        (names.tracks, "classifier", Relay("classifier"), names.emotions),
        (names.emotions, "aggregator", AggregatorStage(engine, 60, client, names), None),
        (names.dead, "aggregator-losses", LossesStage(engine, 60), None),
    ]
    return [
        StreamWorker(
            connect_redis(url),
            url,
            names,
            stream=stream,
            group=group,
            handler=handler,
            output_stream=output,
            config=CAPPED,
            transient=DB_TRANSIENT,
        )
        for stream, group, handler, output in hops
    ]


def per_camera(engine: Engine) -> dict[str, int]:
    """counted + dead + shed of each camera, as PostgreSQL holds them."""
    totals: dict[str, int] = {}
    with engine.connect() as conn:
        counts = conn.execute(
            select(tables.emotion_counts.c.camera_id, func.sum(tables.emotion_counts.c.frames)).group_by(
                tables.emotion_counts.c.camera_id
            )
        ).all()
        losses = conn.execute(
            select(
                tables.frame_losses.c.camera_id,
                func.sum(tables.frame_losses.c.shed + tables.frame_losses.c.dead),
            ).group_by(tables.frame_losses.c.camera_id)
        ).all()
    for camera, n in [*counts, *losses]:
        totals[str(camera)] = totals.get(str(camera), 0) + int(n)
    return totals


def test_postgres_down_longer_than_the_caps_last_loses_nothing_silently_at_any_hop(
    redis_url: str, redis_prefix: str, server_dir: Path
) -> None:
    postgres = EmbeddedPostgres(server_dir)
    engine = create_database_engine(postgres.start(), check=False)
    migrate(engine)
    names = StreamNames(redis_prefix)
    client = connect_redis(redis_url)
    publisher = FramePublisher(
        client, redis_url, names, maxlen=CAP, stop=threading.Event(), dead_maxlen=DEAD_CAP
    )
    cameras, per_cam = [f"cam-{i}" for i in range(8)], 40
    published = {(c, s) for c in cameras for s in range(per_cam)}
    streams = [names.faces, names.tracks, names.emotions, names.dead]
    peak = dict.fromkeys(streams, 0)

    def look() -> None:
        for stream in streams:
            peak[stream] = max(peak[stream], int(client.xlen(stream)))

    try:
        with running(chain(redis_url, names, engine)):
            postgres.stop()
            for seq in range(per_cam):  # 8 cameras, 320 frames: 16 times the caps
                for camera in cameras:
                    publish(publisher, camera, range(seq, seq + 1))
                publisher.account_shed()  # the ingest supervisor's tick
                look()
                time.sleep(0.03)
            time.sleep(1.0)  # the outage goes on: every stage waits
            publisher.account_shed()
            look()
            waiting = len(publisher.unsent_shed)
            postgres = EmbeddedPostgres(server_dir)
            postgres.start()

            def drained() -> bool:
                publisher.account_shed()
                if len(history(engine)["applied"]) >= len(published):
                    return True
                # every group idle and no shed letter waiting: nothing more will come, check now
                return not publisher.unsent_shed and drained_groups(client, names, GROUPS)

            seconds = wait_until(drained, 60)
            time.sleep(0.3)
        h = history(engine)
        print(f"\nPostgreSQL down, 8 cameras, caps {CAP}/{DEAD_CAP}: published {len(published)}, counted "
              f"{h['counted']}, shed {h['shed']}, dead {h['dead']}; peaks {list(peak.values())} "
              f"(faces, tracks, emotions, dead); {waiting} shed letters waited in the ingest; "
              f"drained {seconds:.1f} s after the restart")  # fmt: skip
        assert_history(h, published)
        assert per_camera(engine) == dict.fromkeys(cameras, per_cam)
        assert h["shed"] > 0 and set(h["shed_per_camera"]) == set(cameras), "the ingest shed under pressure"
        writers = 1  # one worker writes each stream here; each may overshoot by one batch
        assert all(peak[s] <= CAP + writers * CAPPED.batch_size for s in streams[:3]), peak
        assert peak[names.dead] <= DEAD_CAP + writers * CAPPED.batch_size, peak
    finally:
        engine.dispose()
        client.close()
        postgres.stop()


def test_a_stage_waits_while_its_output_is_at_the_cap_and_trims_only_acknowledged_entries(
    redis_url: str, redis_prefix: str
) -> None:
    """A detector with nobody reading its output stops at the cap; once the next group acknowledges,
    exactly the acknowledged entries are deleted and it goes on."""
    names = StreamNames(redis_prefix)
    client: redis.Redis = connect_redis(redis_url)
    publisher = FramePublisher(client, redis_url, names, maxlen=100_000, stop=threading.Event())
    publish(publisher, "cam", range(3 * CAP))
    client.xgroup_create(names.faces, "tracker", id="0", mkstream=True)
    detector = StreamWorker(
        connect_redis(redis_url), redis_url, names, stream=names.frames, group="detector",
        handler=FramesToEmotions(), output_stream=names.faces, config=CAPPED,
    )  # fmt: skip
    with running([detector]):
        wait_until(lambda: detector.backpressured, 10)
        time.sleep(0.3)
        held, processed = int(client.xlen(names.faces)), detector.processed
        read: Any = client.xreadgroup("tracker", "t", {names.faces: ">"}, count=CAP)
        ids = [entry_id for entry_id, _ in read[0][1]]
        client.xack(names.faces, "tracker", *ids[:5])  # 5 done, the rest still pending

        def refilled() -> bool:
            oldest: Any = client.xrange(names.faces, count=1)
            return oldest[0][0] == ids[5] and int(client.xlen(names.faces)) >= CAP

        wait_until(refilled, 10)
        time.sleep(0.3)
        oldest: Any = client.xrange(names.faces, count=1)
    assert CAP <= held <= CAP + CAPPED.batch_size and processed == held, "it stopped reading at the cap"
    assert oldest[0][0] == ids[5], "only the acknowledged entries were trimmed"
    assert int(client.xlen(names.faces)) <= CAP + CAPPED.batch_size
    client.close()
