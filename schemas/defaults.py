"""Defaults of the pipeline knobs that the registry's ``pipeline`` section owns, stated once.

``schemas.registry.PipelineConfig`` (stores.yaml) and the stage configs that receive these knobs
(``ingest.IngestConfig``, ``runtime.worker.WorkerConfig``, ``runtime.processes.RunOptions``) all take their
default from here, so a stage run without a registry behaves like one run with an empty ``pipeline:``.
"""

from typing import Final

BUCKET_SECONDS: Final[int] = 60
"""Width of an aggregation bucket, seconds (stores.yaml ``pipeline.bucket``)."""

STREAM_MAXLEN: Final[int] = 2000
"""Approximate MAXLEN of every stage's output stream (``pipeline.stream_maxlen``)."""

MAX_DELIVERIES: Final[int] = 5
"""Deliveries of one entry before it goes to the dead stream (``pipeline.max_deliveries``)."""

RECLAIM_IDLE_SECONDS: Final[int] = 60
"""Idle time after which another worker reclaims a pending entry (``pipeline.reclaim_idle``)."""

JPEG_QUALITY: Final[int] = 85
"""JPEG quality of the frames on the frames stream (``pipeline.jpeg_quality``)."""
