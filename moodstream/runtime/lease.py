"""The single-worker lease, now in ``moodstream.common.lease`` (the ingest's camera leases use it too)."""

from moodstream.common.lease import StageLease, lease_key

__all__ = ["StageLease", "lease_key"]
