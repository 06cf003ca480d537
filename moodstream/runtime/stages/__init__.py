"""Stage adapters of the workers: each turns one batch of stream entries into one output entry per good
input frame (``handle(entries, counters) -> BatchResult``), one module per stage.

Entries that cannot be read (malformed fields, undecodable JPEG, crops of the wrong shape) are returned
as dead with their reason, so the rest of the batch flows. Model work is batched across cameras; the
models themselves are built by ``moodstream.runtime.models``.
"""

from moodstream.runtime.stages.aggregator import AggregatorStage
from moodstream.runtime.stages.classifier import ClassifierStage
from moodstream.runtime.stages.detector import DetectorStage
from moodstream.runtime.stages.forwarder import ForwarderStage
from moodstream.runtime.stages.losses import LossesStage
from moodstream.runtime.stages.tracker import TrackerStage

__all__ = [
    "AggregatorStage",
    "ClassifierStage",
    "DetectorStage",
    "ForwarderStage",
    "LossesStage",
    "TrackerStage",
]
