"""moodstream ingest: camera sources, frame sampling, reconnects, publishing, the multi-camera supervisor.

Public API: ``CameraSpec``, ``IngestConfig``, ``CameraReader``, ``FramePublisher``, ``IngestSupervisor``,
``sample_file`` / ``sample_capture`` (the sampling shared with ``moodstream analyze``), ``encode_jpeg``.
"""

from ingest.backoff import BackoffPolicy
from ingest.camera import CameraReader, CameraStatus, IngestConfig
from ingest.jpeg import JpegError, decode_jpeg, encode_jpeg
from ingest.publisher import FramePublisher
from ingest.sampling import SamplingError, sample_capture, sample_file
from ingest.sources import CameraSpec, SourceError, open_capture, source_type
from ingest.supervisor import IngestSupervisor

__all__ = [
    "BackoffPolicy",
    "CameraReader",
    "CameraSpec",
    "CameraStatus",
    "FramePublisher",
    "IngestConfig",
    "IngestSupervisor",
    "JpegError",
    "SamplingError",
    "SourceError",
    "decode_jpeg",
    "encode_jpeg",
    "open_capture",
    "sample_capture",
    "sample_file",
    "source_type",
]
