"""`moodstream db upgrade|sync|create-reader|min-visits`: the schema, the registry in it, the Grafana role,
the small-group suppression threshold.

With ``MOODSTREAM_DATABASE_URL`` unset, these commands work on the embedded PostgreSQL under
``MOODSTREAM_DATA_DIR`` (started for the command, or reused when already running).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from moodstream.runtime.database import (
    DatabaseError,
    create_database_engine,
    create_reader_role,
    current_revision,
    describe_target,
    get_min_visits,
    migrate,
    set_min_visits,
    sync_registry,
)
from moodstream.runtime.embedded import EmbeddedServerError, database_server
from moodstream.runtime.settings import Settings, SettingsError
from moodstream.schemas.registry import RegistryError, load_registry
from moodstream.schemas.tables import MAX_MIN_VISITS

DEFAULT_PASSWORD_ENV = "MOODSTREAM_READER_PASSWORD"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def _engine() -> Iterator[tuple[Settings, Engine]]:
    """Settings and a checked engine for the configured (or embedded) database; one-line errors, exit 1."""
    try:
        settings = Settings.from_env()
        with database_server(settings) as url:
            engine = create_database_engine(url, settings.connect_timeout)
            try:
                yield settings, engine
            finally:
                engine.dispose()
    except (SettingsError, DatabaseError, EmbeddedServerError, RegistryError) as exc:
        raise _fail(str(exc).replace("\n", "; ")) from None


def _sync(engine: Engine, config: Path) -> None:
    registry = load_registry(config)
    report = sync_registry(engine, registry)
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"registry {config} synced ({len(report.lines())} changes)")


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Camera registry (stores.yaml) to sync.")]


def upgrade(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Also sync this registry.")] = None,
) -> None:
    """Create or upgrade the schema (idempotent); with -c also sync the registry into stores/cameras."""
    with _engine() as (settings, engine):
        migrate(engine, reader_role=settings.reader_role)
        typer.echo(f"database {describe_target(engine.url)} at revision {current_revision(engine)}")
        if config is not None:
            _sync(engine, config)


def sync(config: ConfigOption) -> None:
    """Sync the registry into stores/cameras: add new, rename, disable removed; never delete."""
    with _engine() as (settings, engine):
        migrate(engine, reader_role=settings.reader_role)
        _sync(engine, config)


def create_reader(
    role: Annotated[
        str | None, typer.Option(help="Role name [default: MOODSTREAM_READER_ROLE or moodstream_reader]")
    ] = None,
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the role's password.")
    ] = DEFAULT_PASSWORD_ENV,
) -> None:
    """Create (or update) the read-only role for Grafana: SELECT on the public tables and views only."""
    password = os.environ.get(password_env, "")
    if not password:
        raise _fail(f"set {password_env} to the reader role's password first (it is never read from a file)")
    with _engine() as (settings, engine):
        name = role or settings.reader_role
        migrate(engine, reader_role=name)
        created = create_reader_role(engine, name, password)
        typer.echo(
            f"{'created' if created else 'updated'} read-only role {name} on {describe_target(engine.url)}"
        )


def min_visits(
    value: Annotated[
        int | None,
        typer.Argument(min=0, max=MAX_MIN_VISITS, help="New threshold; omit to print the current one."),
    ] = None,
) -> None:
    """Show or set small-group suppression: store-local hours with fewer visits (people) than this show no
    emotion to the read-only role (every dashboard, Grafana's Explore, analysts). 0 hides none."""
    with _engine() as (settings, engine):
        migrate(engine, reader_role=settings.reader_role)
        if value is not None:
            set_min_visits(engine, value)
        typer.echo(f"min_visits = {get_min_visits(engine)} on {describe_target(engine.url)}")


def register(app: typer.Typer) -> None:
    """Add ``moodstream db upgrade``, ``sync``, ``create-reader`` and ``min-visits``."""
    db = typer.Typer(
        help="PostgreSQL schema, registry sync and the read-only Grafana role.", no_args_is_help=True
    )
    db.command("upgrade")(upgrade)
    db.command("sync")(sync)
    db.command("create-reader")(create_reader)
    db.command("min-visits")(min_visits)
    app.add_typer(db, name="db")
