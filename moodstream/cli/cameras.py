"""`moodstream cameras validate|list -c FILE`: check and show the camera registry (stores.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from moodstream.schemas import defaults
from moodstream.schemas.registry import Camera, Registry, RegistryError, load_registry

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The camera registry (stores.yaml).", show_default=False)
]


def _load_or_exit(config: Path) -> Registry:
    """The registry, or every problem printed on stderr (one per line) and exit code 1."""
    try:
        return load_registry(config)
    except RegistryError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        count = len(exc.problems)
        typer.echo(f"{config}: {count} problem{'s' if count != 1 else ''} found", err=True)
        raise typer.Exit(1) from None


def validate(config: ConfigOption) -> None:
    """Check a camera registry; exit 0 when it is valid, 1 (listing every problem with its line) when not."""
    registry = _load_or_exit(config)
    for store, camera in registry.missing_files():
        typer.echo(
            f"warning: {config}: {store.id}/{camera.id}: video file {camera.source} does not exist (yet)",
            err=True,
        )
    for store, camera in registry.cameras():
        typer.echo(f"{store.id}/{camera.id}: {detection_cost(camera)}")
    total = sum(len(s.cameras) for s in registry.stores)
    enabled = len(list(registry.cameras()))
    typer.echo(
        f"{config}: OK: {len(registry.stores)} stores, {total} cameras ({enabled} enabled), "
        f"bucket {registry.pipeline.bucket}"
    )


def detection_cost(camera: Camera) -> str:
    """One line saying what the camera's detection settings cost per 1080p frame: the size searched (its
    smallest face against the detector's), the P-Net work against a full-size search, gating and masks."""
    from moodstream.runtime.scene import search_cost

    detection = camera.detection
    cost = search_cost(detection.min_face_size, defaults.MIN_FACE_SIZE)
    width, height = cost.size
    words = [
        f"faces from {detection.min_face_size} px: a 1920x1080 frame is searched at {width}x{height} "
        f"({cost.levels} pyramid levels, {cost.pnet_pixels / 1e6:.2f} Mpx of P-Net input, "
        f"{100 * cost.share:.0f}% of the detector work of a full-size search)"
    ]
    if detection.min_face_size < defaults.MIN_FACE_SIZE:
        words.append(f"faces under the detector's {defaults.MIN_FACE_SIZE} px are not found")
    if detection.motion:
        every = detection.full_frame_seconds
        words.append(
            "motion gating on: only changed regions are searched, still frames cost no detector run"
            + (f", a whole frame at least every {every:g} s" if every else "")
        )
    else:
        words.append("motion gating off: every frame searched whole")
    if camera.masks:
        words.append(f"{len(camera.masks)} masked area{'s' if len(camera.masks) > 1 else ''} blanked")
    if camera.zones:
        words.append(f"zones {', '.join(z.id for z in camera.zones)}")
    return "; ".join(words)


def list_cameras(config: ConfigOption) -> None:
    """Show every camera of a registry as a table (passwords shown as ***)."""
    registry = _load_or_exit(config)
    table = Table(title=f"cameras in {config}")
    for column in ("store", "branch", "camera", "name", "source", "fps", "loop", "enabled"):
        table.add_column(column, overflow="fold")
    for store, camera in registry.cameras(enabled_only=False):
        table.add_row(
            store.id,
            store.branch,
            camera.id,
            camera.display_name,
            registry.redacted_source(camera),
            f"{camera.fps:g}",
            "yes" if camera.loop else "no",
            "yes" if store.enabled and camera.enabled else "no",
        )
    Console(width=160).print(table, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``moodstream cameras validate`` and ``moodstream cameras list``."""
    cameras = typer.Typer(help="Check and show the camera registry (stores.yaml).", no_args_is_help=True)
    cameras.command("validate")(validate)
    cameras.command("list")(list_cameras)
    app.add_typer(cameras, name="cameras")
