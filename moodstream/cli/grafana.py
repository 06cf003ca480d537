"""`moodstream grafana export|push`: dashboards as code to JSON files or to a running Grafana."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

DEFAULT_OUT = Path("deploy/grafana/dashboards")
TOKEN_ENV = "MOODSTREAM_GRAFANA_TOKEN"
READER_PASSWORD_ENV = "MOODSTREAM_READER_PASSWORD"

grafana_app = typer.Typer(
    help="Grafana dashboards: export JSON, push to a Grafana server.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@grafana_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="directory for <uid>.json files")] = DEFAULT_OUT,
) -> None:
    """Write the dashboards' JSON (what Grafana's file provisioning loads). Small-group suppression is the
    database's: `moodstream db min-visits N`."""
    from moodstream.runtime.dashboards.build import export_dashboards

    try:
        paths = export_dashboards(out)
    except OSError as exc:
        raise _fail(f"cannot write dashboards to {out}: {exc.strerror}") from None
    for path in paths:
        typer.echo(f"wrote {path}")


@grafana_app.command("push")
def push(
    url: Annotated[str, typer.Option("--url", help="Grafana base URL, e.g. https://grafana.example.com")],
    token_env: Annotated[
        str, typer.Option("--token-env", help="environment variable holding a service-account token")
    ] = TOKEN_ENV,
    datasource: Annotated[
        bool,
        typer.Option("--datasource/--no-datasource", help="also create/update the PostgreSQL datasource"),
    ] = True,
    db_host: Annotated[str, typer.Option("--db-host", help="PostgreSQL host:port as Grafana sees it")] = (
        "postgres:5432"
    ),
    db_name: Annotated[str, typer.Option("--db-name", help="database name")] = "moodstream",
    db_user: Annotated[str, typer.Option("--db-user", help="read-only role")] = "moodstream_reader",
    db_sslmode: Annotated[
        str, typer.Option("--db-sslmode", help="disable, require, verify-ca or verify-full")
    ] = "disable",
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=300, help="seconds per request")] = 10.0,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="allow a plain http:// URL (token and reader password unencrypted): only for a Grafana "
            "on this host or a private network",
        ),
    ] = False,
) -> None:
    """Upload the datasource (password from MOODSTREAM_READER_PASSWORD) and dashboards; idempotent.

    The URL must be https:// unless --insecure is given; TLS checks are always on.
    """
    from moodstream.runtime.dashboards.push import (
        DatasourceSettings,
        GrafanaPusher,
        GrafanaPushError,
        check_grafana_url,
    )

    try:
        check_grafana_url(url, insecure=insecure)
    except GrafanaPushError as exc:
        raise _fail(str(exc)) from None
    token = os.environ.get(token_env) or None
    if token is None and "@" not in url:
        raise _fail(f"no Grafana credentials: set {token_env} to a service-account token")
    ds_settings = None
    if datasource:
        password = os.environ.get(READER_PASSWORD_ENV)
        if not password:
            raise _fail(
                f"set {READER_PASSWORD_ENV} to the read-only role's password (or pass --no-datasource)"
            )
        try:
            ds_settings = DatasourceSettings(
                host=db_host, database=db_name, user=db_user, password=password, sslmode=db_sslmode
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise _fail(f"datasource {err['loc'][0]}: {err['msg']}") from None
    try:
        result = GrafanaPusher(url, token, timeout=timeout, insecure=insecure).push(ds_settings)
    except GrafanaPushError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"folder: {result.folder}; datasource: {result.datasource}")
    for uid, status in result.dashboards.items():
        typer.echo(f"dashboard {uid}: {status}")


def register(app: typer.Typer) -> None:
    """Add `moodstream grafana export|push` to app."""
    app.add_typer(grafana_app, name="grafana")
