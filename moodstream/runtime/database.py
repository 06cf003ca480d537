"""PostgreSQL access of moodstream: engines with a bounded connect time, migrations, the reader role,
and syncing the camera registry into ``stores`` / ``cameras``.

Every error raised here names the server (host, port, database) and never its password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from moodstream.common.redaction import redact_text
from moodstream.schemas import tables

if TYPE_CHECKING:
    from moodstream.schemas.registry import Registry

logger = logging.getLogger(__name__)

MIGRATIONS_LOCATION = "moodstream.schemas:migrations"
_MIGRATION_LOCK_KEY = 0x6D6F6F64  # "mood": one migration at a time per database


class DatabaseError(RuntimeError):
    """A database operation failed; the message names the server, never a password."""


class DatabaseUnavailableError(DatabaseError):
    """The PostgreSQL server could not be reached (or refused us) within the connect timeout."""


def parse_database_url(url: str) -> URL:
    """SQLAlchemy URL for ``url`` with the psycopg (3) driver; DatabaseError when not a PostgreSQL URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a bad port, e.g. a raw '@' or ':' in the password
        raise DatabaseError(
            "database URL is not a valid URL (expected postgresql://user:password@host:port/db; "
            "write '@', ':' and '/' in the password URL-encoded as %40, %3A and %2F)"
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise DatabaseError(f"database URL must be postgresql://..., got {parsed.get_backend_name()}://")
    return parsed.set(drivername="postgresql+psycopg")


def describe_target(url: URL) -> str:
    """``host:port/database`` of a URL (the socket directory for Unix sockets), for messages; no password."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = ",".join(host)
    port = f":{url.port}" if url.port else ""
    return f"{host}{port}/{url.database or ''}"


def create_database_engine(url: str, connect_timeout: float = 5.0, *, check: bool = True) -> Engine:
    """Engine for ``url`` whose connection attempts give up after ``connect_timeout`` seconds.

    With ``check`` a first connection is made now, so an unreachable server fails here with
    DatabaseUnavailableError("cannot connect to PostgreSQL at HOST:PORT/DB: reason").
    """
    parsed = parse_database_url(url)
    timeout = max(2, round(connect_timeout))  # libpq counts whole seconds, minimum 2
    engine = create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"connect_timeout": timeout, "application_name": "moodstream"},
    )
    if check:
        check_connection(engine)
    return engine


def unavailable_error(engine: Engine, exc: BaseException) -> DatabaseUnavailableError:
    """One-line DatabaseUnavailableError for a failed connection, with any password removed."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    secret = engine.url.password
    reason = redact_text(reason, [str(secret)] if secret else [])
    return DatabaseUnavailableError(
        f"cannot connect to PostgreSQL at {describe_target(engine.url)}: {reason}"
    )


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise DatabaseUnavailableError (one line, no password) when that fails."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise unavailable_error(engine, exc) from None


def _alembic_config(connection: Connection, reader_role: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["reader_role"] = reader_role
    return config


def migrate(engine: Engine, reader_role: str = "moodstream_reader", revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (idempotent; concurrent callers wait for each other).

    The initial revision grants SELECT on the public tables/views to ``reader_role`` when it exists.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            command.upgrade(_alembic_config(conn, reader_role), revision)
            conn.commit()
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc.orig, _operational_errors()):
            raise unavailable_error(engine, exc) from None
        raise DatabaseError(f"migration failed on {describe_target(engine.url)}: {_one_line(exc)}") from None


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None when it was never migrated."""
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
        if not exists:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _operational_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    return (psycopg.OperationalError,)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:500]


def quote_role(engine_or_conn: Engine | Connection, role: str) -> str:
    """The role name quoted as a PostgreSQL identifier."""
    return engine_or_conn.dialect.identifier_preparer.quote(role)


def grant_reader(conn: Connection, role: str) -> None:
    """GRANT the read-only role CONNECT, USAGE on schema public and SELECT on the public tables and views.

    Nothing else: no INSERT/UPDATE/DELETE, no CREATE, no access to internal tables (applied_frames,
    alembic_version). Idempotent. Public tables that a later migration adds (the schema is older) are left
    out; that migration grants them when it runs.
    """
    quoted = quote_role(conn, role)
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    conn.execute(text(f"GRANT CONNECT ON DATABASE {quote_role(conn, database)} TO {quoted}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
    for name in (*tables.PUBLIC_TABLES, *tables.PUBLIC_VIEWS):
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
            conn.execute(text(f"GRANT SELECT ON {name} TO {quoted}"))
    for name in (*tables.INTERNAL_TABLES, "alembic_version"):
        conn.execute(text(f"REVOKE ALL ON {name} FROM {quoted}"))


def create_reader_role(engine: Engine, role: str, password: str | None) -> bool:
    """Create (or update) the LOGIN role ``role`` with ``password`` and grant it read-only access.

    Returns True when the role was created, False when it existed (its password is then updated when
    given). The password goes to the server as a literal quoted by the server (``format('%L')``) and never
    into a log line. The database must be migrated first.
    """
    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
        verb = "ALTER" if exists else "CREATE"
        if password:
            ddl = conn.execute(
                text(
                    f"SELECT format('{verb} ROLE %I WITH LOGIN PASSWORD %L', "
                    "CAST(:r AS text), CAST(:p AS text))"
                ),
                {"r": role, "p": password},
            ).scalar_one()
        else:
            ddl = conn.execute(
                text(f"SELECT format('{verb} ROLE %I WITH LOGIN', CAST(:r AS text))"), {"r": role}
            ).scalar_one()
        # straight to psycopg: no ':name' / '%' parsing of the password, and SQLAlchemy never sees the text
        conn.connection.driver_connection.execute(ddl)  # type: ignore[union-attr]
        grant_reader(conn, role)
    return not exists


@dataclass
class SyncReport:
    """What ``sync_registry`` changed; entries are ``store`` or ``store/camera`` ids."""

    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One human-readable line per change, e.g. ``added camera hn-trangtien/entrance``."""
        out = []
        for kind in ("added", "renamed", "updated", "enabled", "disabled"):
            for ident in getattr(self, kind):
                what = "camera" if "/" in ident else "store"
                out.append(f"{kind} {what} {ident}")
        return out


def _apply_row(
    conn: Connection, table: Table, key: dict[str, str], values: dict[str, object], old: object
) -> str | None:
    """Insert or update one dimension row; return the kind of change (added, renamed, ...) or None."""
    if old is None:
        conn.execute(insert(table).values(**key, **values))
        return "added"
    current = {k: getattr(old, k) for k in values}
    if current == values:
        return None
    where = [table.c[k] == v for k, v in key.items()]
    conn.execute(update(table).where(*where).values(**values, updated_at=func.now()))
    if current["enabled"] != values["enabled"]:
        return "enabled" if values["enabled"] else "disabled"
    if current["name"] != values["name"]:
        return "renamed"
    return "updated"


def sync_registry(engine: Engine, registry: Registry) -> SyncReport:
    """Make ``stores``/``cameras`` match the registry in one transaction; nothing is ever deleted.

    New stores/cameras are added, changed ones updated (a new name counts as renamed), and those no
    longer in the registry (or disabled in it) get ``enabled = false`` so their history stays reportable.
    Camera sources are stored with passwords redacted.
    """
    report = SyncReport()
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE stores, cameras IN SHARE ROW EXCLUSIVE MODE"))
        old_stores: dict[str, Row[Any]] = {r.id: r for r in conn.execute(select(tables.stores))}
        old_cameras: dict[tuple[str, str], Row[Any]] = {
            (r.store_id, r.id): r for r in conn.execute(select(tables.cameras))
        }
        for store in registry.stores:
            store_values: dict[str, object] = {
                "name": store.display_name,
                "branch": store.branch,
                "timezone": store.timezone,
                "enabled": store.enabled,
            }
            old_store = old_stores.pop(store.id, None)
            change = _apply_row(conn, tables.stores, {"id": store.id}, store_values, old_store)
            if change:
                getattr(report, change).append(store.id)
        for store, camera in registry.cameras(enabled_only=False):
            values: dict[str, object] = {
                "name": camera.display_name,
                "source_redacted": registry.redacted_source(camera),
                "fps": camera.fps,
                "enabled": store.enabled and camera.enabled,
            }
            key = {"store_id": store.id, "id": camera.id}
            change = _apply_row(
                conn, tables.cameras, key, values, old_cameras.pop((store.id, camera.id), None)
            )
            if change:
                getattr(report, change).append(f"{store.id}/{camera.id}")
        _disable_leftovers(conn, old_stores, old_cameras, report)
    return report


def _disable_leftovers(
    conn: Connection,
    old_stores: dict[str, Row[Any]],
    old_cameras: dict[tuple[str, str], Row[Any]],
    report: SyncReport,
) -> None:
    """Disable the stores and cameras that are no longer in the registry."""
    for store_id, row in old_stores.items():
        if row.enabled:
            conn.execute(
                update(tables.stores)
                .where(tables.stores.c.id == store_id)
                .values(enabled=False, updated_at=func.now())
            )
            report.disabled.append(store_id)
    for (store_id, camera_id), row in old_cameras.items():
        if row.enabled:
            conn.execute(
                update(tables.cameras)
                .where(tables.cameras.c.store_id == store_id, tables.cameras.c.id == camera_id)
                .values(enabled=False, updated_at=func.now())
            )
            report.disabled.append(f"{store_id}/{camera_id}")
