"""moodstream ingest: camera sources, frame sampling, reconnects, publishing, the multi-camera supervisor.

Public API: ``CameraSpec``, ``IngestConfig``, ``CameraReader``, ``FramePublisher``, ``IngestSupervisor``,
``sample_file`` / ``sample_capture`` / ``read_image`` / ``check_capture_size`` (the sampling shared with
``moodstream analyze``, sizes checked before decoding), ``opencv_message`` (an OpenCV error as one line),
``encode_jpeg``.
"""

from moodstream.ingest.backoff import BackoffPolicy
from moodstream.ingest.camera import CameraReader, CameraStatus, IngestConfig
from moodstream.ingest.footage import FootageError, FootagePacer, container_creation_ms
from moodstream.ingest.motion import MotionConfig, MotionGate, full_frame_phase_ms
from moodstream.ingest.publisher import FramePublisher
from moodstream.ingest.sampling import (
    SamplingError,
    check_capture_size,
    read_image,
    sample_capture,
    sample_file,
)
from moodstream.ingest.sources import CameraSpec, SourceError, open_capture, opencv_message, source_type
from moodstream.ingest.supervisor import IngestSupervisor
from moodstream.schemas.jpeg import JpegError, decode_jpeg, encode_jpeg

__all__ = [
    "BackoffPolicy",
    "CameraReader",
    "CameraSpec",
    "CameraStatus",
    "FootageError",
    "FootagePacer",
    "FramePublisher",
    "IngestConfig",
    "IngestSupervisor",
    "JpegError",
    "MotionConfig",
    "MotionGate",
    "SamplingError",
    "SourceError",
    "check_capture_size",
    "container_creation_ms",
    "decode_jpeg",
    "encode_jpeg",
    "full_frame_phase_ms",
    "open_capture",
    "opencv_message",
    "read_image",
    "sample_capture",
    "sample_file",
    "source_type",
]
