"""Store-edge wiring: the forwarder's two consumer loops (results and dead letters) from the run options.

``forwarder_workers(options, metrics)`` builds one ``StreamWorker`` per forwarded stream, each reading the
store's stream in the consumer group ``forwarder`` and writing to the central Redis named by
``options.central_redis_url`` (keys under ``options.central_prefix``, default: the store's prefix).
"""

from __future__ import annotations

from typing import Final

from moodstream.common.health import HealthState
from moodstream.common.streams import StreamNames, connect_redis
from moodstream.runtime.metrics import PipelineMetrics
from moodstream.runtime.processes import GROUPS, RunOptions
from moodstream.runtime.stages.forwarder import ForwarderStage, connect_central
from moodstream.runtime.worker import StreamWorker
from moodstream.schemas import defaults

FORWARDER_GROUP: Final[str] = GROUPS["forwarder"]
"""Consumer group of the forwarder on the store's emotions and dead streams."""

SHED_SHARE: Final[float] = 0.9
"""The forwarder sheds results waiting at the store beyond this share of the results stream's cap, so the
cap itself (which would drop entries without naming their frames) never trims an unread one."""


class EdgeConfigError(ValueError):
    """Store-edge mode asked for without what it needs (the central Redis URL)."""


def max_waiting(options: RunOptions) -> int:
    """Results that may wait at the store before the oldest are shed (90% of the results stream's cap)."""
    cap = options.results_maxlen or options.worker.output_maxlen or defaults.STREAM_MAXLEN
    return max(1, int(cap * SHED_SHARE))


def forwarder_workers(
    options: RunOptions, served: tuple[PipelineMetrics, HealthState] | None = None
) -> list[StreamWorker]:
    """The results (``emotions``) and ``dead`` forwarders of a store box; EdgeConfigError without a central
    Redis URL."""
    if not options.central_redis_url:
        raise EdgeConfigError(
            "the forwarder needs the central Redis: set MOODSTREAM_CENTRAL_REDIS_URL (redis://host:6379/0)"
        )
    names = StreamNames(options.prefix)
    central_names = StreamNames(options.central_prefix or options.prefix)
    central = connect_central(options.central_redis_url)
    routes = (
        (names.emotions, central_names.emotions, GROUPS["aggregator"], max_waiting(options)),
        (names.dead, central_names.dead, GROUPS["losses"], None),
    )
    workers = []
    for source, target, central_group, waiting in routes:
        local = connect_redis(options.redis_url)
        handler = ForwarderStage(
            local,
            central,
            names,
            central_names,
            source=source,
            target=target,
            group=FORWARDER_GROUP,
            central_group=central_group,
            central_maxlen=options.central_maxlen,
            max_waiting=waiting,
        )
        worker = StreamWorker(
            local,
            options.redis_url,
            names,
            stream=source,
            group=FORWARDER_GROUP,
            handler=handler,
            output_stream=None,
            config=options.worker,
            metrics=None if served is None else served[0],
            health=None if served is None else served[1],
        )
        handler.consumer = worker.consumer
        workers.append(worker)
    return workers
