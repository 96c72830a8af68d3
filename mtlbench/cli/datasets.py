"""Commands that read a built dataset: `info` (the dataset card, optionally verified) and `export`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mtlbench.cli.common import Command, comma_list, console, err_console, flag, state
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.dataset.verify import verify_files
from mtlbench.progress import rich_progress

MAX_SHOWN_PROBLEMS = 20


def _class_table(card: DatasetCard) -> Table:
    splits = card.split_names
    table = Table(title="Segmentation classes (pixels per split)", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("class")
    table.add_column("colour")
    for split in splits:
        table.add_column(split, justify="right")
    for cls in card.classes:
        # The swatch shows on a terminal only; the hex value everywhere (logs, pipes).
        red, green, blue = cls.color
        swatch = Text.assemble(("  ", f"on rgb({red},{green},{blue})"), f" #{red:02x}{green:02x}{blue:02x}")
        counts = [f"{card.meta['splits'][split]['pixel_counts'].get(cls.name, 0):,}" for split in splits]
        table.add_row(str(cls.id), cls.name, swatch, *counts)
    table.add_row("255", "(ignored)", "", *[f"{card.meta['splits'][s]['ignored_pixels']:,}" for s in splits])
    return table


def _activity_table(card: DatasetCard) -> Table:
    splits = card.split_names
    table = Table(title="Activities (frames per split)", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("activity")
    for split in splits:
        table.add_column(split, justify="right")
    for activity_id, name in enumerate(card.activities):
        table.add_row(str(activity_id), name, *[str(card.meta["splits"][s]["activity_counts"].get(name, 0)) for s in splits])
    return table


def _split_table(card: DatasetCard) -> Table:
    table = Table(title="Splits", title_justify="left")
    for column in ("split", "frames", "sequences"):
        table.add_column(column)
    for split, info in card.meta["splits"].items():
        table.add_row(split, str(info["samples"]), ", ".join(str(s) for s in info["sequences"]))
    return table


def _skipped_lines(card: DatasetCard) -> list[str]:
    lines = []
    for reason, info in card.meta.get("skipped", {}).items():
        examples = ", ".join(info["examples"])
        more = ", ..." if info["count"] > len(info["examples"]) else ""
        lines.append(f"skipped {info['count']} x {reason}: {examples}{more}")
    for item in card.meta.get("unmapped_label_values", []):
        lines.append(f"label value {item['value']} not in labels.json: {item['pixels']:,} pixels set to 255")
    return lines


def print_card(card: DatasetCard, out: Console) -> None:
    meta = card.meta
    out.print(f"[bold]{escape(meta['name'])}[/] {escape(meta['version'])}  ({escape(meta['builder']['name'])} builder {escape(meta['builder']['version'])})")
    out.print(escape(meta["source"]["description"]), highlight=False)
    out.print(f"folder: {escape(str(card.root))}", highlight=False)
    out.print(f"fingerprint: {card.fingerprint}", highlight=False)
    out.print(_split_table(card))
    out.print(_activity_table(card))
    out.print(_class_table(card))
    for line in _skipped_lines(card):
        out.print(f"[yellow]{escape(line)}[/]", highlight=False)


def print_build_report(folder: Path, out: Console) -> None:
    card = read_dataset(folder)
    counts = ", ".join(f"{split} {info['samples']}" for split, info in card.meta["splits"].items())
    out.print(f"[green]built[/] {escape(str(folder))}: {len(card.samples)} frames ({counts})", highlight=False)
    out.print(f"fingerprint: {card.fingerprint}", highlight=False)
    for line in _skipped_lines(card):
        out.print(f"[yellow]{escape(line)}[/]", highlight=False)


def info(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A built dataset folder."),
    verify: bool = flag("--verify", "Re-hash every image and mask and report mismatches."),
) -> None:
    """Print a dataset's card: classes, activities, split and class counts, fingerprint."""
    quiet = state(ctx).quiet
    card = read_dataset(folder)
    if not quiet:
        print_card(card, console)
    if not verify:
        return
    with rich_progress(err_console, quiet) as progress:
        problems = verify_files(card, progress)
    for problem in problems[:MAX_SHOWN_PROBLEMS]:
        err_console.print(f"[red]mismatch[/] {escape(problem)}", highlight=False)
    if len(problems) > MAX_SHOWN_PROBLEMS:
        err_console.print(f"... and {len(problems) - MAX_SHOWN_PROBLEMS} more", highlight=False)
    if problems:
        err_console.print(f"[bold red]error:[/] {escape(str(folder))}: {len(problems)} file(s) fail verification", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]verified[/] {2 * len(card.samples)} files: all match samples.csv", highlight=False)


def export(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A built dataset folder."),
    to: str = typer.Option(..., "--to", help="Comma-separated exports: endoarss, coco, hf."),
) -> None:
    """Write exports of a built dataset into FOLDER/exports/<name>/."""
    from mtlbench.exports import run_exports

    with rich_progress(err_console, state(ctx).quiet) as progress:
        run_exports(Path(folder), comma_list(to), progress)


def register(app: typer.Typer) -> None:
    app.command("info", cls=Command)(info)
    app.command("export", cls=Command)(export)
