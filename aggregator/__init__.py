"""moodstream aggregator: capture-time buckets, idempotent upserts into PostgreSQL, per-branch reports.

``buckets`` (``bucket_start``, ``fold_emotions``, ``fold_losses``) turns frames into
(bucket_start UTC, store, camera) rows; ``upsert`` (``apply_emotions``, ``apply_losses``) writes
them in the caller's transaction, recording each frame's identity in ``applied_frames`` so a redelivered
frame is never counted twice; ``report`` builds the per-branch reports.
"""
