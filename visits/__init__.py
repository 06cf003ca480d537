"""moodstream visits: per-camera face tracking, the face-quality gate, visits and frame reordering.

Pure computation (numpy/scipy; no Redis, no database). Public API:
`VisitConfig`, `TrackerConfig`, `GateConfig` (settings); `FaceTracker` (motion-only tracking);
`QualityGate`, `FaceQuality` (readable faces); `VisitBuilder`, `FrameVisits`, `EndedVisit`, `Vote`
(visits of one camera); `ReorderWindow`, `Released` (per-camera frame order); `VisitsError`,
`ReorderError`. Track ids live only in memory and never leave the process.
"""

from moodstream.visits.builder import EndedVisit, FrameVisits, VisitBuilder, Vote
from moodstream.visits.config import GateConfig, TrackerConfig, VisitConfig
from moodstream.visits.errors import ReorderError, VisitsError
from moodstream.visits.gate import FaceQuality, QualityGate
from moodstream.visits.reorder import Released, ReorderWindow
from moodstream.visits.tracker import FaceTracker

__all__ = [
    "EndedVisit",
    "FaceQuality",
    "FaceTracker",
    "FrameVisits",
    "GateConfig",
    "QualityGate",
    "Released",
    "ReorderError",
    "ReorderWindow",
    "TrackerConfig",
    "VisitBuilder",
    "VisitConfig",
    "VisitsError",
    "Vote",
]
