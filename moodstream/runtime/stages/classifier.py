"""Classifier stage adapter: ``tracks`` -> ``emotions``.

Only the vote crops of the visits that ended at a frame are classified (at most ``max_votes`` per visit,
the best readable faces), all crops of the batch in ONE classifier call; classifier work falls as people
linger. Each frame gives one EmotionsMessage: its face counts, the classified votes and the ended visits
with their emotions (mean of their votes' probabilities; unreadable when they have none).
"""

from __future__ import annotations

from collections.abc import Sequence

from moodstream.runtime.frame_analysis import AnalysisError, FrameAnalyzer
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.visit_tracking import visit_emotions
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.messages import EmotionsMessage, TracksMessage


class ClassifierStage:
    """``tracks`` -> ``emotions``: the vote crops of the whole batch in one classifier call."""

    stage = "classifier"

    def __init__(self, analyzer: FrameAnalyzer) -> None:
        self.analyzer = analyzer

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One EmotionsMessage per readable tracks entry; wrong-shaped vote crops are returned dead."""
        good, dead = decode_all(entries, TracksMessage.decode, TracksMessage.KIND)
        messages: list[TracksMessage] = []
        for entry, message in good:
            try:
                self.analyzer.check_crops(message.crops)
            except AnalysisError as exc:
                dead.append((entry, f"{message.key.label()}: {exc}"))
                continue
            messages.append(message)
        probs = self.analyzer.classify_crops([m.crops for m in messages])
        outputs = []
        for message, rows in zip(messages, probs, strict=True):
            votes, visits = visit_emotions(message.visits, rows)
            out = EmotionsMessage(
                message.key, message.captured_ms, len(message.faces), message.readable_faces, votes, visits
            )
            outputs.append(out.encode())
            key = message.key
            counters.add(key.store_id, key.camera_id, "frames_in")
            counters.add(key.store_id, key.camera_id, "frames_out")
            counters.add(key.store_id, key.camera_id, "faces", len(message.faces))
            counters.add(key.store_id, key.camera_id, "visits", len(visits))
        return BatchResult(outputs=outputs, dead=dead)
