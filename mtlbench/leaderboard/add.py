"""`leaderboard add`: seeds -> checked by the protocol -> one entry on a board, pictures copied.

Everything is read and checked before anything is written; the pictures go into a temporary
folder, the board file is written (through a temporary name) and the pictures' folder is then
renamed into place, so an error or an interrupt leaves the board as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.leaderboard.board import (
    board_path, check_name, new_board, pictures_dir, read_board, slug, track_of, write_board,
)
from mtlbench.leaderboard.protocol import MIN_SEEDS, check_fits_board, check_seeds
from mtlbench.leaderboard.seed_result import SeedResult, is_submission, read_run_folder, read_submission, seed_folders
from mtlbench.outputs import atomic_folder


@dataclass(frozen=True)
class AddOptions:
    board: str
    boards_dir: Path
    new: bool = False
    demo: bool = False
    title: str | None = None
    name: str | None = None
    allow_fewer_seeds: bool = False
    replace: bool = False
    single_task_baseline: bool = False
    robustness_reference: bool = False
    dataset: Path | None = None
    workers: int = 1


def _open_board(options: AddOptions) -> tuple[Path, dict]:
    path = board_path(options.boards_dir, options.board)
    if options.new:
        if path.exists():
            raise InputError(path, "the board exists: drop --new to add to it")
        return path, new_board(options.board, track=None, demo=options.demo, title=options.title)
    if options.demo or options.title:
        raise InputError("--demo/--title", "apply to a new board only (with --new)")
    if not path.exists():
        raise InputError(path, f"no board {options.board!r} in {options.boards_dir} (create it with --new; --demo for a demo board)")
    return path, read_board(path)


def read_seeds(sources: Sequence[Path], options: AddOptions, scratch: Path) -> list[SeedResult]:
    if not sources:
        raise InputError("leaderboard add", "give at least one run folder or submission")
    card = read_dataset(options.dataset) if options.dataset is not None else None
    seeds = []
    for source in sources:
        for folder in seed_folders(Path(source)):
            if is_submission(folder):
                seeds.append(read_submission(folder, card, scratch, workers=options.workers))
            else:
                seeds.append(read_run_folder(folder))
    return seeds


def _entry(seeds: list[SeedResult], entry_id: str, name: str) -> dict:
    first = seeds[0]
    return {
        "id": entry_id,
        "name": name,
        "method": first.record["method"],
        "config_sha256": first.record["config_sha256"],
        "comparable": first.record["comparable"],
        "fewer_seeds": False,
        "seeds": [
            {
                "seed": seed.seed,
                "tasks_scored": list(seed.results["submission"]["tasks_scored"]),
                "metrics": seed.metrics(),
                "ci": seed.intervals(),
                "robustness": seed.robustness(),
                "provenance": seed.provenance(),
                "pictures": [f"{entry_id}/seed-{seed.seed}/{picture.name}" for picture in seed.pictures],
            }
            for seed in sorted(seeds, key=lambda s: s.seed)
        ],
        "summary": None,
    }


def _place(board: dict, entry: dict, options: AddOptions, where: str) -> dict:
    """The board with `entry` in it, or a refusal when it clashes with an entry already there."""
    others = []
    for existing in board["entries"]:
        same_config = existing["config_sha256"] == entry["config_sha256"]
        if existing["id"] == entry["id"] or same_config:
            if not options.replace:
                why = "the same configuration" if same_config else "the same name and another configuration"
                raise InputError(where, f"board {board['name']!r} has entry {existing['id']!r} with {why} (--replace to update it, or --name)")
            continue
        others.append(existing)
    board = {**board, "entries": [*others, entry]}
    if options.single_task_baseline and entry["id"] not in board["single_task_baselines"]:
        board["single_task_baselines"] = sorted([*board["single_task_baselines"], entry["id"]])
    if options.robustness_reference:
        if entry["seeds"][0]["robustness"] is None:
            raise InputError(where, "--robustness-reference: this entry scored no robustness set (run-baseline --gen)")
        board["robustness_reference"] = entry["id"]
    missing = [name for name in (*board["single_task_baselines"], board["robustness_reference"]) if name and name not in
               {e["id"] for e in board["entries"]}]
    if missing:
        raise InputError(where, f"--replace would drop entry {missing[0]!r}, which the board uses as a baseline or reference")
    return board


def add_entry(sources: Sequence[Path], options: AddOptions) -> tuple[dict, dict]:
    """Add the seeds of `sources` as one entry; returns (board, entry) as written."""
    path, board = _open_board(options)
    boards_dir = Path(options.boards_dir)
    with tempfile.TemporaryDirectory(prefix="mtlbench-add-") as scratch:
        seeds = read_seeds(sources, options, Path(scratch))
        check_seeds(seeds, allow_fewer_seeds=options.allow_fewer_seeds)
        check_fits_board(seeds, board)
        first = seeds[0]
        name = options.name or first.record.get("preset") or first.record["method"]
        entry_id = check_name(slug(name), "--name")
        entry = {**_entry(seeds, entry_id, name), "fewer_seeds": len(seeds) < MIN_SEEDS}
        if board["dataset"] is None:
            dataset = first.record["dataset"]
            board.update(
                dataset={"name": dataset["name"], "version": dataset.get("version"), "fingerprint": dataset["fingerprint"],
                         "split": "test", "tasks": first.tasks},
                evaluator_major=int(first.results["evaluator"]["version"].split(".")[0]),
                track=board["track"] or track_of(first.tasks),
            )
        if first.gen_results is not None and board["robustness_set"] is None:
            board["robustness_set"] = first.robustness()["dataset"]
        board = _place(board, entry, options, first.where)
        target = pictures_dir(boards_dir, board["name"]) / entry_id
        with atomic_folder(target, overwrite=True, option="--board") as staging:
            for seed in seeds:
                folder = staging / f"seed-{seed.seed}"
                folder.mkdir()
                for picture in seed.pictures:
                    shutil.copyfile(picture, folder / picture.name)
            # last inside the block: a board that cannot be written leaves no pictures behind
            board = write_board(path, board)
    return board, next(e for e in board["entries"] if e["id"] == entry_id)
