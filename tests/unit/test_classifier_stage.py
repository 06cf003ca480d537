"""Classifier stage adapter (tracks -> emotions) on the real default model, without a stream server."""

from __future__ import annotations

import numpy as np
import pytest

from moodstream.common.streams import StreamNames
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.models import AnalysisConfig, build_analyzer
from moodstream.runtime.stages.classifier import ClassifierStage
from moodstream.runtime.worker import Entry
from moodstream.schemas.messages import (
    EmotionsMessage,
    FrameKey,
    TrackedFace,
    TracksMessage,
    VisitRecord,
    decode_message,
)

FACE = TrackedFace((10.0, 10.0, 60.0, 60.0), 0.99, True, 0.8)


@pytest.fixture(scope="module")
def stage() -> ClassifierStage:
    return ClassifierStage(build_analyzer(AnalysisConfig(), detect=False))


def _entry(seq: int, visits: tuple[VisitRecord, ...], crops: np.ndarray) -> Entry:
    message = TracksMessage(FrameKey("s", "c", 1, seq), 1000 + seq, (64, 64), (FACE,), False, visits, crops)
    return Entry(f"{seq}-0", message.encode())


def test_frames_without_votes_pass_and_wrong_shaped_votes_go_dead(stage: ClassifierStage) -> None:
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 256, (2, 48, 48), dtype=np.uint8)
    entries = [
        _entry(1, (), np.zeros((0, 0, 0), np.uint8)),  # no visit ended: an empty array of any shape
        _entry(2, (VisitRecord(900, 1002, 5, 4, (950, 1000)),), votes),
        _entry(3, (VisitRecord(900, 1003, 1, 1, (1003,)),), np.zeros((1, 32, 32), np.uint8)),
        _entry(4, (VisitRecord(900, 1004, 3, 0, ()),), np.zeros((0, 48, 48), np.uint8)),
    ]
    result = stage.handle(entries, StageCounters("classifier", StreamNames()))
    assert [entry.entry_id for entry, _ in result.dead] == ["3-0"]
    assert "expected (N, 48, 48)" in result.dead[0][1]
    decoded = [decode_message(fields) for fields in result.outputs]
    assert all(isinstance(m, EmotionsMessage) for m in decoded)
    by_seq = {m.key.seq: m for m in decoded if isinstance(m, EmotionsMessage)}
    assert sorted(by_seq) == [1, 2, 4]
    assert by_seq[1].visits == () and by_seq[1].faces == 1
    assert len(by_seq[2].votes) == 2 and by_seq[2].visits[0].emotion is not None
    assert by_seq[4].visits[0].emotion is None  # no vote: the visit abstains
