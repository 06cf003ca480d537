"""`moodstream report`: per-branch satisfaction reports from the PostgreSQL views."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from moodstream.aggregator import RENDERERS, ReportError, ReportRequest

DATE_HELP = "local calendar day YYYY-MM-DD (in each store's own time zone)"


class ReportCommandError(Exception):
    """A bad argument or an unreachable database: printed as one line, exit code 1."""


def _parse_date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportCommandError(f"{option} {value!r} is not a date; expected YYYY-MM-DD") from None


def _run_report(explicit_url: str | None, request: ReportRequest, fmt: str) -> str:
    """Connect (bounded time) to --database-url, MOODSTREAM_DATABASE_URL or the embedded PostgreSQL under
    the data directory, fetch and render. Errors name the server, never a password."""
    from moodstream.aggregator import fetch_report, render
    from moodstream.runtime.database import DatabaseError, create_database_engine, unavailable_error
    from moodstream.runtime.embedded import EmbeddedServerError, database_server
    from moodstream.runtime.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        if explicit_url:
            settings = settings.model_copy(update={"database_url": explicit_url})
        with database_server(settings) as url:
            engine = create_database_engine(url, settings.connect_timeout)
            try:
                with engine.connect() as conn:
                    report = fetch_report(conn, request)
            except DBAPIError as exc:
                raise ReportCommandError(str(unavailable_error(engine, exc))) from None
            finally:
                engine.dispose()
    except (SettingsError, DatabaseError, EmbeddedServerError) as exc:
        raise ReportCommandError(str(exc).replace("\n", "; ")) from None
    return render(report, fmt)


def report(
    date_from: Annotated[str, typer.Option("--from", help=f"first day, {DATE_HELP}")],
    date_to: Annotated[str, typer.Option("--to", help=f"last day, included, {DATE_HELP}")],
    branch: Annotated[str | None, typer.Option("--branch", help="only this branch")] = None,
    store: Annotated[str | None, typer.Option("--store", help="only this store id")] = None,
    zone: Annotated[
        str | None,
        typer.Option("--zone", help="only the visits of this camera zone (stores.yaml zones[].id)"),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="bucket: day or hour (store time)")] = "day",
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or html")] = "table",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to this file")] = None,
    min_visits: Annotated[
        int,
        typer.Option(
            "--min-visits",
            min=0,
            help="suppress the counts of rows with fewer visits (people) than this (privacy of small groups)",
        ),
    ] = 0,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL [default: MOODSTREAM_DATABASE_URL, else the embedded server]",
        ),
    ] = None,
) -> None:
    """Per branch and store, per local day or hour: visitors, dwell, emotion and satisfaction per visit;
    then faces (secondary)."""
    try:
        if by not in ("day", "hour"):
            raise ReportCommandError(f"--by {by!r} is not valid; expected day or hour")
        if fmt not in RENDERERS:
            raise ReportCommandError(f"--format {fmt!r} is not valid; expected one of {', '.join(RENDERERS)}")
        request = ReportRequest.model_validate(
            {
                "branch": branch,
                "store": store,
                "zone": zone,
                "date_from": _parse_date("--from", date_from),
                "date_to": _parse_date("--to", date_to),
                "by": by,
                "min_visits": min_visits,
            }
        )
        text = _run_report(database_url, request, fmt)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"report written to {output}", err=True)
    except (ReportCommandError, ReportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        typer.echo(f"error: {_first_validation_message(exc)}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


def _first_validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    message = str(inner) if inner is not None else err.get("msg", "invalid value")
    return f"{where}: {message}" if where else message


def register(app: typer.Typer) -> None:
    """Add `moodstream report` to app."""
    app.command("report")(report)
