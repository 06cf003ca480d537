"""moodstream detector: MTCNN face detection on ONNX Runtime, and face alignment.

Public API: `FaceDetector`, `DetectorConfig`, `Face`, `align_face`, `DetectorError`, `ModelFileError`,
`pyramid_scales` (the pyramid a frame size gets, for cost estimates).
Nothing runs at import time; networks load when a `FaceDetector` is created.
"""

from moodstream.detector.align import align_face
from moodstream.detector.config import DetectorConfig
from moodstream.detector.detector import FaceDetector
from moodstream.detector.errors import DetectorError, ModelFileError
from moodstream.detector.face import Face
from moodstream.detector.stages import pyramid_scales

__all__ = [
    "DetectorConfig",
    "DetectorError",
    "Face",
    "FaceDetector",
    "ModelFileError",
    "align_face",
    "pyramid_scales",
]
