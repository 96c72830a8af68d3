"""`mtlbench sweep GRID.json --out DIR`: a grid of runs, here or on a SLURM cluster (docs/sweeps.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from mtlbench.cli.common import Command, console, err_console, state
from mtlbench.errors import InputError
from mtlbench.progress import rich_progress


def sweep(
    ctx: typer.Context,
    grid: Path = typer.Argument(..., help="The grid file (docs/sweeps.md)."),
    out: Path = typer.Option(..., "--out", help="Sweep folder; an existing one is continued (finished runs are skipped)."),
    executor: str = typer.Option("local", "--executor", help="local (this machine), slurm (a job array through submitit), or submitit-local (submitit's local executor)."),
    parallel: int = typer.Option(1, "--parallel", min=1, help="Runs at a time (local), or the job array's parallelism (slurm)."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="local: GPUs to share out, one per running run (CUDA_VISIBLE_DEVICES)."),
    slurm: Optional[List[str]] = typer.Option(None, "--slurm", help="A submitit parameter as key=value (repeatable), e.g. timeout_min=240, slurm_partition=gpu, gpus_per_node=1."),
) -> None:
    """Run every preset x variant x dataset x seed of a grid, resumably, then add the finished cells to the grid's board."""
    from mtlbench.sweep.run import SweepOptions, parse_slurm, run_sweep

    options = SweepOptions(out=out, executor=executor, parallel=parallel, gpus=gpus, slurm=parse_slurm(list(slurm or [])))
    quiet = state(ctx).quiet
    say = (lambda message: None) if quiet else (lambda message: console.print(escape(message), highlight=False))
    with rich_progress(err_console, quiet) as progress:
        summary = run_sweep(grid, options, progress=progress, say=say)
    if summary["failed"]:
        raise InputError(summary["failed"][0], f"{len(summary['failed'])} of {summary['jobs']} runs failed: see this log (rerun the sweep to continue)")
    if not quiet:
        console.print(f"sweep finished in {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("sweep", cls=Command)(sweep)
