"""moodstream aggregator: capture-time buckets, idempotent upserts into PostgreSQL, per-branch reports.

``buckets`` (``bucket_start``, ``fold_emotions``, ``fold_losses``) turns frames into
(bucket_start UTC, store, camera) rows; ``upsert`` (``apply_emotions``, ``apply_losses``,
``prune_applied_frames``) writes them in the caller's transaction, recording each frame's identity in
``applied_frames`` so a redelivered frame is never counted twice; ``report`` (request, model, query:
``ReportRequest``, ``fetch_report``) and ``report_render`` (``RENDERERS``, ``render``) build the per-branch
reports. The runtime and the CLI import these names from here, never from the submodules.
"""

from moodstream.aggregator.buckets import BucketError, bucket_start, fold_emotions, fold_losses
from moodstream.aggregator.report import (
    Counts,
    Report,
    ReportError,
    ReportRequest,
    ReportRow,
    UnknownScopeError,
    fetch_report,
)
from moodstream.aggregator.report_render import RENDERERS, render
from moodstream.aggregator.upsert import (
    APPLIED_FRAMES_RETENTION,
    apply_emotions,
    apply_losses,
    prune_applied_frames,
)

__all__ = [
    "APPLIED_FRAMES_RETENTION",
    "RENDERERS",
    "BucketError",
    "Counts",
    "Report",
    "ReportError",
    "ReportRequest",
    "ReportRow",
    "UnknownScopeError",
    "apply_emotions",
    "apply_losses",
    "bucket_start",
    "fetch_report",
    "fold_emotions",
    "fold_losses",
    "prune_applied_frames",
    "render",
]
