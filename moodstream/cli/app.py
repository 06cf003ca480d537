"""The `moodstream` command: the one startup point of every moodstream process.

Each command area lives in its own module under ``moodstream.cli`` and exposes
``register(app)``; this module lists them explicitly (no discovery magic).
"""

from __future__ import annotations

import typer

from moodstream.cli import analyze, cameras, db, evaluate, grafana, pipeline, report, status

COMMAND_MODULES = (cameras, db, evaluate, analyze, pipeline, report, grafana, status)


def build_app() -> typer.Typer:
    """Build the typer application with every command area registered."""
    app = typer.Typer(
        name="moodstream",
        help="Customer satisfaction from facial emotions seen by store cameras.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for module in COMMAND_MODULES:
        module.register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()


if __name__ == "__main__":
    main()
