"""`mtlbench demo-sources`: generated raw sources in the real layouts, for tests and the demo."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mtlbench.cli.common import Command, console, err_console, flag, state
from mtlbench.outputs import atomic_folder
from mtlbench.progress import rich_progress


def demo_sources(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder to create."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator (same seed, same bytes)."),
    overwrite: bool = flag("--overwrite", "Replace an existing non-empty folder."),
) -> None:
    """Write small EndoVis 2018 + EndoVis-18-VQA, ESD COCO, FESS and PitVQA sources with learnable synthetic content."""
    from mtlbench.demo import write_demo_sources

    quiet = state(ctx).quiet
    with rich_progress(err_console, quiet) as progress, atomic_folder(out, overwrite=overwrite) as staging:
        write_demo_sources(staging, seed=seed, progress=progress)
    if not quiet:
        console.print(f"[green]wrote[/] demo sources to {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo-sources", cls=Command)(demo_sources)
