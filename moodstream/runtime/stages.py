"""Stage handlers of the workers (detector, classifier, aggregator, losses) and the factories that
create their model objects once per worker process.

Each handler turns one batch of stream entries into one output entry per good input frame; entries
that cannot be read (malformed fields, undecodable JPEG, crops of the wrong shape) are returned as dead
with their reason, so the rest of the batch flows. Model work is batched across cameras.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import redis
import sqlalchemy.exc
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine

from moodstream.aggregator.upsert import apply_emotions, apply_losses, prune_applied_frames
from moodstream.common.streams import StreamNames
from moodstream.runtime.database import unavailable_error
from moodstream.runtime.frame_analysis import (
    AnalysisError,
    CropSpec,
    FrameAnalyzer,
    FrameFaces,
    crop_spec_for_model,
)
from moodstream.runtime.metrics import PipelineMetrics, StageCounters
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.jpeg import decode_jpeg
from moodstream.schemas.messages import (
    DeadLetter,
    EmotionsMessage,
    FacesMessage,
    FrameMessage,
    MessageError,
)

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 20_000
PRUNE_INTERVAL_S = 3600.0
"""How often the aggregator deletes frame identities older than the retention from applied_frames."""
"""Capture-to-commit latencies kept in Redis (newest first) for status and benchmarks."""


class AnalysisConfig(BaseModel):
    """Models and their knobs used by the detector and classifier stages and by ``analyze``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="default", min_length=1, description="FER model: default, a name or a path.")
    min_face_size: int = Field(default=20, ge=12, le=4096, description="Smallest face side searched (px).")
    max_input_width: int | None = Field(
        default=None, ge=32, le=16384, description="Downscale wider frames to this width before detection."
    )
    crop_margin: float = Field(default=0.0, ge=0.0, le=1.0, description="Context around faces when aligning.")
    intra_op_threads: int = Field(
        default=0, ge=0, le=256, description="ONNX Runtime threads (0: its choice)."
    )
    providers: Literal["auto", "cpu"] = Field(
        default="auto", description="auto (GPU when present) or cpu only."
    )


def _providers(config: AnalysisConfig) -> Literal["auto"] | list[str]:
    return "auto" if config.providers == "auto" else ["CPUExecutionProvider"]


def build_analyzer(config: AnalysisConfig, *, detect: bool = True, classify: bool = True) -> FrameAnalyzer:
    """Create the models a process needs (once, at worker start) and wrap them in a FrameAnalyzer."""
    crop = crop_spec_for_model(config.model, config.crop_margin)
    face_detector = align = emotion_classifier = None
    if detect:
        from moodstream.detector import DetectorConfig, FaceDetector, align_face

        face_detector = FaceDetector(
            DetectorConfig(
                min_face_size=config.min_face_size,
                max_input_width=config.max_input_width,
                providers=_providers(config),
                intra_op_threads=config.intra_op_threads,
            )
        )
        align = align_face
    if classify:
        from moodstream.classifier import ClassifierConfig, EmotionClassifier

        emotion_classifier = EmotionClassifier(
            ClassifierConfig(
                model=config.model, providers=_providers(config), intra_op_threads=config.intra_op_threads
            )
        )
    return FrameAnalyzer(face_detector, align, emotion_classifier, crop)  # type: ignore[arg-type]


def _decode_all(
    entries: Sequence[Entry], decode: type[FrameMessage] | type[FacesMessage] | type[EmotionsMessage]
) -> tuple[list[tuple[Entry, object]], list[tuple[Entry, str]]]:
    good: list[tuple[Entry, object]] = []
    dead: list[tuple[Entry, str]] = []
    for entry in entries:
        try:
            good.append((entry, decode.decode(entry.fields)))
        except MessageError as exc:
            dead.append((entry, f"malformed {decode.KIND} entry: {exc}"))
    return good, dead


class DetectorStage:
    """``frames`` -> ``faces``: decode JPEGs, detect faces in all frames of the batch at once, align crops."""

    stage = "detector"

    def __init__(self, analyzer: FrameAnalyzer) -> None:
        self.analyzer = analyzer

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One FacesMessage per decodable frame; malformed entries and bad JPEGs are returned dead."""
        good, dead = _decode_all(entries, FrameMessage)
        messages: list[FrameMessage] = []
        images: list[np.ndarray] = []
        for entry, message in good:
            assert isinstance(message, FrameMessage)
            image = decode_jpeg(message.jpeg)
            if image is None:
                dead.append(
                    (entry, f"undecodable JPEG ({len(message.jpeg)} bytes) for {message.key.label()}")
                )
                continue
            messages.append(message)
            images.append(image)
        outputs = []
        for message, image, found in zip(messages, images, self.analyzer.detect(images), strict=True):
            h, w = image.shape[:2]
            out = FacesMessage(message.key, message.captured_ms, (w, h), found.faces, found.crops)
            outputs.append(out.encode())
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "frames_out")
            counters.add(message.key.store_id, message.key.camera_id, "faces", len(found.faces))
        return BatchResult(outputs=outputs, dead=dead)


class ClassifierStage:
    """``faces`` -> ``emotions``: every crop of the batch in one classifier call."""

    stage = "classifier"

    def __init__(self, analyzer: FrameAnalyzer) -> None:
        self.analyzer = analyzer

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One EmotionsMessage per readable faces entry; wrong-shaped crops are returned dead."""
        good, dead = _decode_all(entries, FacesMessage)
        messages: list[FacesMessage] = []
        for entry, message in good:
            assert isinstance(message, FacesMessage)
            try:
                self.analyzer.check_crops(message.crops)
            except AnalysisError as exc:
                dead.append((entry, f"{message.key.label()}: {exc}"))
                continue
            messages.append(message)
        results = self.analyzer.classify([FrameFaces(m.faces, m.crops) for m in messages])
        outputs = []
        for message, faces in zip(messages, results, strict=True):
            outputs.append(EmotionsMessage(message.key, message.captured_ms, faces).encode())
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "frames_out")
            counters.add(message.key.store_id, message.key.camera_id, "faces", len(faces))
        return BatchResult(outputs=outputs, dead=dead)


@contextlib.contextmanager
def _database(engine: Engine) -> Iterator[Connection]:
    """One transaction; a lost or refused connection becomes DatabaseUnavailableError naming the server
    (host, port, database; never the password), which the worker waits out."""
    try:
        with engine.begin() as conn:
            yield conn
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise unavailable_error(engine, exc) from None


class AggregatorStage:
    """``emotions`` -> PostgreSQL: one transaction per batch, redelivered frames counted once."""

    stage = "aggregator"

    def __init__(
        self,
        engine: Engine,
        bucket_seconds: int,
        client: redis.Redis,
        names: StreamNames,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.bucket_seconds = bucket_seconds
        self.client = client
        self.names = names
        self.metrics = metrics
        self._next_prune = 0.0  # monotonic time of the next applied_frames pruning (0: at the first batch)

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Commit the batch's counts; returns no outputs (the commit is the output) and the malformed."""
        self._prune_if_due()
        good, dead = _decode_all(entries, EmotionsMessage)
        messages = [m for _, m in good if isinstance(m, EmotionsMessage)]
        with _database(self.engine) as conn:
            counted = apply_emotions(conn, messages, self.bucket_seconds)
        committed_ms = time.time() * 1000
        for message in counted:
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "faces", message.faces)
        if len(counted) < len(messages):
            skipped = len(messages) - len(counted)
            log.info("aggregator: %d of %d frames were already counted", skipped, len(messages))
        self._record_latency([committed_ms - m.captured_ms for m in counted])
        return BatchResult(dead=dead)

    def _prune_if_due(self) -> None:
        """Once an hour, forget frame identities older than APPLIED_FRAMES_RETENTION (bounded table)."""
        if time.monotonic() < self._next_prune:
            return
        with _database(self.engine) as conn:
            pruned = prune_applied_frames(conn)
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        if pruned:
            log.info("aggregator: forgot %d frame identities older than the retention", pruned)

    def _record_latency(self, latencies_ms: list[float]) -> None:
        if not latencies_ms:
            return
        if self.metrics is not None:
            for value in latencies_ms:
                self.metrics.latency.observe(value / 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(self.names.latency, *[f"{v:.0f}" for v in latencies_ms])
        pipe.ltrim(self.names.latency, 0, LATENCY_SAMPLES - 1)
        pipe.execute()


class LossesStage:
    """``dead`` -> ``frame_losses``: counts shed and dead frames per bucket (each frame once)."""

    stage = "losses"

    def __init__(self, engine: Engine, bucket_seconds: int) -> None:
        self.engine = engine
        self.bucket_seconds = bucket_seconds

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """Commit loss counts of readable dead letters; unreadable ones are skipped with a log line."""
        letters: list[DeadLetter] = []
        for entry in entries:
            try:
                letters.append(DeadLetter.decode(entry.fields))
            except MessageError as exc:
                log.warning("losses: skipping unreadable dead letter %s: %s", entry.entry_id, exc)
        with _database(self.engine) as conn:
            counted = apply_losses(conn, letters, self.bucket_seconds)
        for letter in counted:
            if letter.key is not None:
                counters.add(letter.key.store_id, letter.key.camera_id, letter.loss)
        return BatchResult()


def crop_spec(config: AnalysisConfig) -> CropSpec:
    """The crop spec of the configured FER model (from its manifest)."""
    return crop_spec_for_model(config.model, config.crop_margin)
