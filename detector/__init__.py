"""moodstream detector: MTCNN face detection on ONNX Runtime, and face alignment.

Public API: `FaceDetector`, `DetectorConfig`, `Face`, `align_face`, `DetectorError`, `ModelFileError`.
Nothing runs at import time; networks load when a `FaceDetector` is created.
"""

from detector.align import align_face
from detector.config import DetectorConfig
from detector.detector import FaceDetector
from detector.errors import DetectorError, ModelFileError
from detector.face import Face

__all__ = ["DetectorConfig", "DetectorError", "Face", "FaceDetector", "ModelFileError", "align_face"]
