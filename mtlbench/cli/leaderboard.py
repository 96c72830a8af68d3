"""`mtlbench leaderboard new | add | render`: boards with provenance (docs/leaderboards.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from mtlbench.cli.common import Command, console, flag, new_app, state
from mtlbench.leaderboard.board import DEFAULT_BOARDS_DIR

app = new_app(help="Leaderboards: add runs under the multi-seed protocol, render markdown and a static site.", no_args_is_help=True)

BOARDS_DIR_HELP = "Folder of the board files (<name>.json)."


@app.command("new", cls=Command)
def new(
    name: str = typer.Argument(..., help="Board name: lower-case letters, digits, '.', '_', '-'."),
    track: Optional[str] = typer.Option(None, "--track", help="endoarss or vision-language (otherwise set by the first entry)."),
    demo: bool = flag("--demo", "A demo board: takes NOT COMPARABLE runs, and says so on every rendering."),
    title: Optional[str] = typer.Option(None, "--title", help="Title shown on the renderings (default: the name)."),
    boards_dir: Path = typer.Option(DEFAULT_BOARDS_DIR, "--boards-dir", help=BOARDS_DIR_HELP),
) -> None:
    """Create an empty board; its first entry pins the dataset, its tasks and the evaluator version."""
    from mtlbench.errors import InputError
    from mtlbench.leaderboard.board import board_path, new_board, write_board

    path = board_path(boards_dir, name)
    board = new_board(name, track=track, demo=demo, title=title)
    if path.exists():
        raise InputError(path, "the board exists")
    write_board(path, board)
    console.print(f"created {escape(str(path))}", highlight=False)


@app.command("add", cls=Command)
def add(
    ctx: typer.Context,
    runs: List[Path] = typer.Argument(..., help="Run folders (one per seed, or a run-baseline --seeds folder), or submissions from outside (a folder with run.json and predictions/, or a predictions zip with run.json at its root)."),
    board: str = typer.Option(..., "--board", help="The board's name (leaderboards/<name>.json)."),
    boards_dir: Path = typer.Option(DEFAULT_BOARDS_DIR, "--boards-dir", help=BOARDS_DIR_HELP),
    new_board: bool = flag("--new", "Create the board with this entry."),
    demo: bool = flag("--demo", "With --new: a demo board (takes NOT COMPARABLE runs)."),
    title: Optional[str] = typer.Option(None, "--title", help="With --new: the board's title."),
    name: Optional[str] = typer.Option(None, "--name", help="The entry's name (default: the preset)."),
    allow_fewer_seeds: bool = flag("--allow-fewer-seeds", "Accept fewer than 3 seeds; the board flags the entry."),
    replace: bool = flag("--replace", "Replace the entry with the same name or configuration."),
    single_task_baseline: bool = flag("--single-task-baseline", "This entry is a single-task baseline: Δm and Δp of the others are against it."),
    robustness_reference: bool = flag("--robustness-reference", "This entry is the reference of the board's mCE."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Submissions from outside: the dataset folder they predict (scored here)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Submissions from outside: worker processes decoding masks."),
) -> None:
    """Check runs against the protocol and add them, as one entry, to a board."""
    from mtlbench.leaderboard.add import AddOptions, add_entry
    from mtlbench.leaderboard.markdown import number

    options = AddOptions(
        board=board, boards_dir=boards_dir, new=new_board, demo=demo, title=title, name=name, allow_fewer_seeds=allow_fewer_seeds,
        replace=replace, single_task_baseline=single_task_baseline, robustness_reference=robustness_reference, dataset=dataset,
        workers=workers,
    )
    written, entry = add_entry(runs, options)
    if state(ctx).quiet:
        return
    seeds = ", ".join(str(seed["seed"]) for seed in entry["seeds"])
    console.print(f"added {escape(entry['id'])} (seeds {seeds}) to board {escape(written['name'])}", highlight=False)
    for metric in written["headline_metrics"]:
        stats = entry["summary"]["metrics"][metric]
        console.print(f"  {escape(metric)}: {number(stats)}", highlight=False)
    if entry["summary"]["delta_m"]:
        console.print(f"  Δm: {number(entry['summary']['delta_m'], digits=2)} %", highlight=False)
    console.print("render it with: mtlbench leaderboard render", highlight=False)


@app.command("render", cls=Command)
def render(
    ctx: typer.Context,
    boards_dir: Path = typer.Option(DEFAULT_BOARDS_DIR, "--boards-dir", help=BOARDS_DIR_HELP),
    site: Optional[Path] = typer.Option(None, "--site", help="Folder of the static site (default: BOARDS_DIR/site); replaced whole."),
) -> None:
    """Write each board as markdown beside its JSON, and the static HTML site (no network needed to view it)."""
    from mtlbench.leaderboard.render import render as render_boards

    site = site or Path(boards_dir) / "site"
    markdown, boards = render_boards(boards_dir, site)
    if not state(ctx).quiet:
        for path, board in zip(markdown, boards):
            console.print(f"{escape(str(path))}: {len(board['entries'])} entries", highlight=False)
        console.print(f"site: open {escape(str(Path(site).resolve() / 'index.html'))}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="leaderboard")
