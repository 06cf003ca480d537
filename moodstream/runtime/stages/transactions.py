"""One PostgreSQL transaction for a stage's batch, with lost connections turned into a named error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy.exc
from sqlalchemy import Connection, Engine

from moodstream.runtime.database import conflict_error, unavailable_error


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; a lost or refused connection becomes DatabaseUnavailableError naming the server
    (host, port, database; never the password), a transaction PostgreSQL rolled back over a conflict with
    another one (deadlock, serialization failure) TransactionConflictError; the worker retries both."""
    try:
        with engine.begin() as conn:
            yield conn
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise conflict_error(engine, exc) or unavailable_error(engine, exc) from None
