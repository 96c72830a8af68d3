"""`mtlbench sweep GRID.json --out DIR`: every (preset, variant, dataset) cell of a grid for every
seed, resumably, then `leaderboard add` of each cell whose seeds all finished (docs/sweeps.md).

The folder layout is DIR/<preset>[+<variant>]/<dataset>/seed-N (what `run-baseline --seeds`
writes), DIR/logs/<cell>.<dataset>.seed-N.log, and DIR/submitit/ for submitit's own files. A
rerun skips finished seeds and continues started ones from their checkpoints; adding a cell to
its board again replaces its entry with the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mtlbench.errors import InputError
from mtlbench.leaderboard.add import AddOptions, add_entry
from mtlbench.leaderboard.board import board_path
from mtlbench.leaderboard.seed_result import SEED_PREFIX, is_finished
from mtlbench.outputs import check_output_folder
from mtlbench.sweep.executors import EXECUTORS, Job, Outcome, run_local, run_submitit
from mtlbench.sweep.grid import Cell, Grid, read_grid

LOGS = "logs"
SUBMITIT = "submitit"


@dataclass(frozen=True)
class SweepOptions:
    out: Path
    executor: str = "local"
    parallel: int = 1
    gpus: int = 0
    slurm: dict | None = None  # submitit parameters (timeout_min, slurm_partition, gpus_per_node, ...)


def _seed_done(cell: Cell, out: Path, seed: int) -> bool:
    return is_finished(cell.folder(out) / f"{SEED_PREFIX}{seed}")


def jobs_of(grid: Grid, out: Path) -> list[Job]:
    """The unfinished seeds of the grid, as jobs."""
    jobs = []
    for cell in grid.cells:
        for seed in grid.seeds:
            if _seed_done(cell, out, seed):
                continue
            arguments = ["run-baseline", cell.preset, "--dataset", str(cell.dataset), "--out", str(cell.folder(out)), "--seeds", str(seed)]
            for override in grid.overrides(cell):
                arguments += ["--set", override]
            if cell.gen is not None:
                arguments += ["--gen", str(cell.gen)]
            name = f"{cell.name}.{cell.dataset.name}.{SEED_PREFIX}{seed}"
            jobs.append(Job(name, tuple(arguments), Path(out) / LOGS / f"{name}.log"))
    return jobs


def _check_options(options: SweepOptions) -> None:
    if options.executor not in EXECUTORS:
        raise InputError("--executor", f"{options.executor!r} is not one of: {', '.join(EXECUTORS)}")
    if options.parallel < 1:
        raise InputError("--parallel", "at least 1")
    if options.executor == "local" and options.slurm:
        raise InputError("--slurm", "applies to --executor slurm or submitit-local")
    if options.executor != "local" and options.gpus:
        raise InputError("--gpus", "applies to --executor local (on SLURM: --slurm gpus_per_node=1)")


def add_finished_cells(grid: Grid, out: Path, say: Callable[[str], None]) -> list[str]:
    """Add every cell whose seeds all finished to the grid's board; returns the entry ids added."""
    target = grid.board
    if target is None:
        return []
    added = []
    for cell in grid.cells:
        if not all(_seed_done(cell, out, seed) for seed in grid.seeds):
            continue
        new = not board_path(target.boards_dir, target.name).exists()
        options = AddOptions(
            board=target.name, boards_dir=target.boards_dir, new=new, demo=target.demo and new, title=target.title if new else None,
            name=cell.name, allow_fewer_seeds=target.allow_fewer_seeds, replace=True,
        )
        _, entry = add_entry([cell.folder(out)], options)
        say(f"board {target.name}: {entry['id']} ({len(entry['seeds'])} seeds)")
        added.append(entry["id"])
    return added


def run_sweep(grid_path: Path, options: SweepOptions, *, progress=None, say: Callable[[str], None] = lambda message: None) -> dict:
    """Run the grid; returns {"jobs", "failed": [log paths], "added": [entry ids]}."""
    _check_options(options)
    grid = read_grid(grid_path)
    out = Path(options.out)
    check_output_folder(out, "--out", overwrite=True)  # resumable: an existing sweep folder is continued
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs_of(grid, out)
    total = len(grid.cells) * len(grid.seeds)
    say(f"{total} runs in the grid, {total - len(jobs)} finished earlier, {len(jobs)} to run ({options.executor})")
    advance_bar = progress("sweep", len(jobs)) if progress and jobs else (lambda note=None: None)

    def advance(outcome: Outcome) -> None:
        advance_bar(f"{outcome.job.name}: {'ok' if outcome.status == 0 else 'FAILED'}")

    if not jobs:
        outcomes = []
    elif options.executor == "local":
        outcomes = run_local(jobs, options.parallel, options.gpus, advance)
    else:
        cluster = "slurm" if options.executor == "slurm" else "local"
        parameters = {"slurm_array_parallelism": options.parallel, **(options.slurm or {})} if cluster == "slurm" else dict(options.slurm or {})
        outcomes = run_submitit(jobs, out / SUBMITIT, cluster, parameters, advance)
    failed = [str(outcome.job.log) for outcome in outcomes if outcome.status != 0]
    added = add_finished_cells(grid, out, say)
    return {"jobs": len(jobs), "failed": failed, "added": added}


def parse_slurm(values: list[str]) -> dict:
    """--slurm key=value pairs (submitit parameters), values parsed as JSON when they parse."""
    parameters = {}
    for text in values:
        key, separator, raw = text.partition("=")
        if not separator or not key:
            raise InputError(f"--slurm {text}", "expected key=value (a submitit parameter, e.g. timeout_min=120)")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    return parameters
