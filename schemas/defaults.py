"""Defaults of knobs that more than one config model carries, stated once.

Pipeline knobs that the registry's ``pipeline`` section owns: ``schemas.registry.PipelineConfig``
(stores.yaml) and the configs that receive them (``ingest.IngestConfig``, ``runtime.worker.WorkerConfig``,
``runtime.processes.RunOptions``) take their default from here, so a stage run without a registry behaves
like one run with an empty ``pipeline:``. Model knobs: a stage's model config (``detector.DetectorConfig``,
``classifier.ClassifierConfig``) and the pipeline's ``runtime.models.AnalysisConfig`` take theirs from here
(a plain module, so the runtime's configs need not import ONNX Runtime to know them).
"""

from typing import Final

BUCKET_SECONDS: Final[int] = 60
"""Width of an aggregation bucket, seconds (stores.yaml ``pipeline.bucket``)."""

STREAM_MAXLEN: Final[int] = 2000
"""Cap of every stream (``pipeline.stream_maxlen``): the frames stream's approximate MAXLEN (the ingest
counts what it sheds), every later stream's backlog (backpressure)."""

DEAD_MAXLEN: Final[int] = 100_000
"""Cap of the dead stream's backlog (shed and dead letters the losses stage has not acknowledged)."""

MAX_DELIVERIES: Final[int] = 5
"""Deliveries of one entry before it goes to the dead stream (``pipeline.max_deliveries``)."""

RECLAIM_IDLE_SECONDS: Final[int] = 60
"""Idle time after which another worker reclaims a pending entry (``pipeline.reclaim_idle``)."""

JPEG_QUALITY: Final[int] = 85
"""JPEG quality of the frames on the frames stream (``pipeline.jpeg_quality``)."""

MAX_FRAME_PIXELS: Final[int] = 3840 * 2160
"""Camera frames with more pixels are downscaled at ingest to this many (``pipeline.max_frame_pixels``;
4K UHD, 8.3 megapixels)."""

FRAME_PIXELS_CAP: Final[int] = 40_000_000
"""Upper bound of ``pipeline.max_frame_pixels``: the most pixels a stage ever decodes from a frame."""

# --- model knobs -------------------------------------------------------------------------------------

MIN_FACE_SIZE: Final[int] = 20
"""Smallest face side the detector searches, pixels (the reference MTCNN's)."""

MAX_INPUT_WIDTH: Final[int | None] = None
"""Frames wider than this are downscaled before detection; None: full resolution."""

FER_MODEL: Final[str] = "default"
"""The FER model a classifier runs: the registry's default model."""

MODEL_INTRA_OP_THREADS: Final[int] = 0
"""ONNX Runtime threads of a lone model object (0: ONNX Runtime's choice, every core)."""
