"""One PostgreSQL transaction for a stage's batch, with lost connections turned into a named error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy.exc
from sqlalchemy import Connection, Engine

from moodstream.runtime.database import unavailable_error


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; a lost or refused connection becomes DatabaseUnavailableError naming the server
    (host, port, database; never the password), which the worker waits out."""
    try:
        with engine.begin() as conn:
            yield conn
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise unavailable_error(engine, exc) from None
