"""Classifier stage adapter: ``faces`` -> ``emotions``."""

from __future__ import annotations

from collections.abc import Sequence

from moodstream.runtime.frame_analysis import AnalysisError, FrameAnalyzer, FrameFaces
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import EmotionsMessage, FacesMessage


class ClassifierStage:
    """``faces`` -> ``emotions``: every crop of the batch in one classifier call."""

    stage = "classifier"

    def __init__(self, analyzer: FrameAnalyzer) -> None:
        self.analyzer = analyzer

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One EmotionsMessage per readable faces entry; wrong-shaped crops are returned dead."""
        good, dead = decode_all(entries, FacesMessage.decode, FacesMessage.KIND)
        messages: list[FacesMessage] = []
        for entry, message in good:
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
