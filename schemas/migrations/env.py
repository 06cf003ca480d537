"""Alembic environment of moodstream.

Run through ``moodstream db upgrade`` (``moodstream.runtime.database.migrate``), which hands over an open
connection in ``config.attributes["connection"]``; ``alembic -c schemas/alembic.ini`` with
``sqlalchemy.url`` (or ``MOODSTREAM_DATABASE_URL``) works too, for writing new revisions.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, make_url

from moodstream.schemas.tables import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    """Run the pending migrations on an open connection in one transaction."""
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one opened from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("MOODSTREAM_DATABASE_URL", "")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or MOODSTREAM_DATABASE_URL")
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
