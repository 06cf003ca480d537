"""Idempotent writes of a batch into PostgreSQL, in one transaction per batch.

``apply_emotions`` first records each frame's identity in ``applied_frames`` (INSERT ... ON CONFLICT DO
NOTHING RETURNING): only frames not seen before are then folded into ``emotion_counts`` with INSERT ...
ON CONFLICT DO UPDATE (adding to the row). Both statements run in the caller's transaction, so a batch
delivered twice, or a frame that went both through the pipeline and to ``dead``, is counted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, delete, func, tuple_
from sqlalchemy.dialects.postgresql import insert

from moodstream.aggregator.buckets import fold_emotions, fold_losses, fold_zones
from moodstream.schemas import tables
from moodstream.schemas.messages import DeadLetter, EmotionsMessage, FrameKey
from moodstream.schemas.tables import COUNT_COLUMNS, ZONE_COUNT_COLUMNS

M = TypeVar("M", EmotionsMessage, DeadLetter)


def _first_of_each(messages: Sequence[M], allowed: set[FrameKey]) -> list[M]:
    """The first message of each frame identity in ``allowed`` (in order); others dropped."""
    seen: set[FrameKey] = set()
    out: list[M] = []
    for message in messages:
        if message.key is not None and message.key in allowed and message.key not in seen:
            seen.add(message.key)
            out.append(message)
    return out


def claim_new_frames(conn: Connection, keys: Sequence[FrameKey]) -> set[FrameKey]:
    """Record frame identities as applied; return those that were not recorded before.

    The identities are inserted in sorted order, so two aggregators (or the counts and losses workers)
    inserting overlapping batches take the row locks in the same order and cannot deadlock."""
    unique = sorted(set(keys), key=lambda k: (k.store_id, k.camera_id, k.stream_epoch, k.seq))
    if not unique:
        return set()
    table = tables.applied_frames
    statement = (
        insert(table)
        .values(
            [
                {
                    "store_id": k.store_id,
                    "camera_id": k.camera_id,
                    "stream_epoch": k.stream_epoch,
                    "seq": k.seq,
                }
                for k in unique
            ]
        )
        .on_conflict_do_nothing()
        .returning(table.c.store_id, table.c.camera_id, table.c.stream_epoch, table.c.seq)
    )
    return {FrameKey(*row) for row in conn.execute(statement)}


def _timestamp(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def apply_emotions(
    conn: Connection, messages: Sequence[EmotionsMessage], bucket_seconds: int
) -> list[EmotionsMessage]:
    """Count the frames of ``messages`` not counted before, with their votes and ended visits; return
    those (the newly counted frames). A visit rides on its frame's entry, so it is counted at most once."""
    new = claim_new_frames(conn, [m.key for m in messages])
    unique = _first_of_each(messages, new)
    rows = fold_emotions(unique, bucket_seconds)
    if rows:
        table = tables.emotion_counts
        values: list[dict[str, Any]] = [
            {
                "bucket_start": start,
                "store_id": store,
                "camera_id": camera,
                "bucket_seconds": bucket_seconds,
                **counts.column_values(),
                "last_frame_at": _timestamp(counts.last_ms),
            }
            for (start, store, camera), counts in sorted(rows.items())
        ]
        statement = insert(table).values(values)
        added = {c: table.c[c] + statement.excluded[c] for c in (*COUNT_COLUMNS, "dwell_seconds_sum")}
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.bucket_start, table.c.store_id, table.c.camera_id],
                set_={
                    **added,
                    "last_frame_at": func.greatest(table.c.last_frame_at, statement.excluded.last_frame_at),
                    "updated_at": func.now(),
                },
            )
        )
    _apply_zones(conn, unique, bucket_seconds)
    return unique


def _apply_zones(conn: Connection, messages: Sequence[EmotionsMessage], bucket_seconds: int) -> None:
    """Add the zone visits of newly counted frames to ``zone_visits`` (same transaction)."""
    rows = fold_zones(messages, bucket_seconds)
    if not rows:
        return
    table = tables.zone_visits
    values: list[dict[str, Any]] = [
        {
            "bucket_start": start,
            "store_id": store,
            "camera_id": camera,
            "zone": zone,
            "bucket_seconds": bucket_seconds,
            **counts.column_values(),
        }
        for (start, store, camera, zone), counts in sorted(rows.items())
    ]
    statement = insert(table).values(values)
    added = {c: table.c[c] + statement.excluded[c] for c in (*ZONE_COUNT_COLUMNS, "dwell_seconds_sum")}
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.bucket_start, table.c.store_id, table.c.camera_id, table.c.zone],
            set_={**added, "updated_at": func.now()},
        )
    )


def apply_losses(conn: Connection, letters: Sequence[DeadLetter], bucket_seconds: int) -> list[DeadLetter]:
    """Count dead/shed frames (those naming their frame, not counted before); return the newly counted."""
    new = claim_new_frames(conn, [letter.key for letter in letters if letter.key is not None])
    fresh = _first_of_each(letters, new)
    rows = fold_losses(fresh, bucket_seconds)
    if rows:
        table = tables.frame_losses
        statement = insert(table).values(
            [
                {"bucket_start": s, "store_id": st, "camera_id": c, "shed": n.shed, "dead": n.dead}
                for (s, st, c), n in sorted(rows.items())
            ]
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.bucket_start, table.c.store_id, table.c.camera_id],
                set_={
                    "shed": table.c.shed + statement.excluded.shed,
                    "dead": table.c.dead + statement.excluded.dead,
                    "updated_at": func.now(),
                },
            )
        )
    return fresh


def applied_count(conn: Connection, keys: Sequence[FrameKey]) -> int:
    """How many of ``keys`` are recorded as applied (for checks and tests)."""
    if not keys:
        return 0
    table = tables.applied_frames
    ident = tuple_(table.c.store_id, table.c.camera_id, table.c.stream_epoch, table.c.seq)
    wanted = [(k.store_id, k.camera_id, k.stream_epoch, k.seq) for k in keys]
    return int(conn.scalar(func.count().select().where(ident.in_(wanted))) or 0)


APPLIED_FRAMES_RETENTION: Final[timedelta] = timedelta(days=7)
"""How long a counted frame's identity is kept. A frame can be redelivered only while its entry is still in
a capped stream (minutes to hours), so identities older than this can go without risking a double count."""


def prune_applied_frames(conn: Connection, older_than: timedelta = APPLIED_FRAMES_RETENTION) -> int:
    """Delete the frame identities recorded more than ``older_than`` ago; returns how many were deleted.

    "Ago" is by the server's clock (``now()``, the one that stamped ``applied_at``), so an application
    host whose clock runs ahead cannot delete identities that are still needed."""
    table = tables.applied_frames
    cutoff = func.now() - older_than
    result = conn.execute(delete(table).where(table.c.applied_at < cutoff))
    return int(result.rowcount or 0)
