"""`mtlbench contact-sheet`: one frame under every corruption and severity, as a PNG grid."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from mtlbench.cli.common import Command, comma_list, console, state
from mtlbench.errors import InputError
from mtlbench.outputs import check_output_file


def contact_sheet(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="A built (clean) dataset."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    sample: Optional[str] = typer.Option(None, "--sample", help="sample_id of the frame (default: the first test frame)."),
    corruptions: Optional[str] = typer.Option(None, "--corruptions", help="Comma-separated corruptions (default: the 13 of MTLEndovis-Gen and the extras)."),
    seed: int = typer.Option(0, "--seed", help="Global seed, as for build-dataset mtlendovis-gen."),
    thumb_width: int = typer.Option(192, "--thumb-width", min=32, help="Width of each cell in pixels."),
) -> None:
    """Write a contact sheet: rows are corruptions, columns the clean frame and severities 1-5."""
    from mtlbench.corruptions import DEFAULT_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
    from mtlbench.corruptions.registry import CORRUPTIONS
    from mtlbench.corruptions.sheet import contact_sheet as draw
    from mtlbench.dataset.manifest import read_dataset
    from mtlbench.dataset.files import read_image
    from mtlbench.pngio import write_png

    card = read_dataset(dataset)
    check_output_file(out, "--out")
    candidates = {s.sample_id: s for s in card.samples}
    chosen = candidates.get(sample) if sample else (card.split("test") or card.samples)[0]
    if chosen is None:
        raise InputError(dataset, f"no sample {sample!r}")
    names = comma_list(corruptions) or DEFAULT_CORRUPTIONS + EXTRA_CORRUPTIONS
    for name in names:
        CORRUPTIONS.get(name, "--corruptions")
    grid = draw(read_image(card.root, chosen), names, SEVERITIES, seed, thumb_width=thumb_width)
    write_png(out, grid)
    if not state(ctx).quiet:
        console.print(f"[green]wrote[/] {escape(str(out))}: {chosen.sample_id} under {len(names)} corruptions", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("contact-sheet", cls=Command)(contact_sheet)
