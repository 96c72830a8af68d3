"""Commands that read a built dataset: `info` (the dataset card, optionally verified) and `export`."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mtlbench.cli.common import Command, comma_list, console, err_console, flag, state
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.dataset.verify import dataset_files, verify_files
from mtlbench.progress import rich_progress

MAX_SHOWN_PROBLEMS = 20


_HEX_COLOUR = re.compile(r"^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$")


def _cell(value: str) -> str | Text:
    """A colour cell gets a swatch before its hex value: the swatch shows on a terminal only."""
    match = _HEX_COLOUR.match(value)
    if not match:
        return escape(value)
    red, green, blue = (int(part, 16) for part in match.groups())
    return Text.assemble(("  ", f"on rgb({red},{green},{blue})"), f" {value}")


def _task_table(card: DatasetCard, task) -> Table:
    title, columns, rows = task.summary({split: card.statistics[split]["tasks"][task.name] for split in card.split_names})
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column == "id" else "left")
    for split in card.split_names:
        table.add_column(split, justify="right")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    return table


def _split_table(card: DatasetCard) -> Table:
    table = Table(title="Splits", title_justify="left")
    for column in ("split", "frames", "sequences"):
        table.add_column(column)
    for split, info in card.statistics.items():
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
    out.print("tasks: " + ", ".join(f"{task.name} ({task.kind})" for task in card.tasks), highlight=False)
    out.print(_split_table(card))
    for task in card.tasks:
        out.print(_task_table(card, task))
    for line in _skipped_lines(card):
        out.print(f"[yellow]{escape(line)}[/]", highlight=False)


def print_build_report(folder: Path, out: Console) -> None:
    card = read_dataset(folder)
    counts = ", ".join(f"{split} {info['samples']}" for split, info in card.statistics.items())
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
    console.print(f"[green]verified[/] {len(dataset_files(card))} files: all match samples.csv", highlight=False)


def export(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A built dataset folder."),
    to: str = typer.Option(..., "--to", help="Comma-separated exports: endoarss, coco, hf."),
) -> None:
    """Write exports of a built dataset into FOLDER/exports/<name>/."""
    from mtlbench.exports import run_exports

    with rich_progress(err_console, state(ctx).quiet) as progress:
        run_exports(Path(folder), comma_list(to), progress, where="--to")


def register(app: typer.Typer) -> None:
    app.command("info", cls=Command)(info)
    app.command("export", cls=Command)(export)
