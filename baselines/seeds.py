"""The multi-seed protocol: one run per seed into RUN_DIR/seed-N, sequentially and resumably.

A seed folder is finished (run.json and results.json written: skipped), started (a checkpoint:
continued from it), or new. Every seed's configuration is made and checked, and every started
seed folder is checked to hold the same configuration, before the first seed trains, so a bad
value or a folder of another configuration stops the command before any work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from baselines.config import RunConfig, load_config
from baselines.run import resumed_config, run_baseline
from baselines.train import CHECKPOINT
from mtlbench.errors import InputError
from mtlbench.outputs import check_output_folder
from mtlbench.progress import ProgressFn, silent
from mtlbench.leaderboard.seed_result import SEED_PREFIX, is_finished
from mtlbench.run_record import CONFIG_FILE, config_sha256


def seed_folder(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"{SEED_PREFIX}{seed}"


def is_started(folder: Path) -> bool:
    return (folder / CHECKPOINT).is_file() and (folder / CONFIG_FILE).is_file()


@dataclass(frozen=True)
class SeedPlan:
    seed: int
    folder: Path
    config: RunConfig
    state: str  # "finished", "started" or "new"


def plan_seeds(preset: str, overrides: Sequence[str], run_dir: Path, seeds: Sequence[int], overwrite: bool) -> list[SeedPlan]:
    """What to do for each seed, with every configuration checked; nothing is written."""
    if not seeds:
        raise InputError("--seeds", "name at least one seed")
    if len(set(seeds)) != len(seeds):
        raise InputError("--seeds", f"a seed is named twice: {','.join(map(str, seeds))}")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(run_dir, "--out names an existing file, not a folder")
    if run_dir.is_dir() and not overwrite:
        strangers = sorted(path.name for path in run_dir.iterdir() if not path.name.startswith(SEED_PREFIX))
        if strangers:
            raise InputError(run_dir, f"holds {strangers[0]}, not only seed folders: not a multi-seed run folder")
    check_output_folder(run_dir, "--out", overwrite=True)
    plans = []
    for seed in seeds:
        config = load_config(preset, [*overrides, f"train.seed={seed}"])
        folder = seed_folder(run_dir, seed)
        state = "new"
        if not overwrite and (is_finished(folder) or is_started(folder)):
            saved = resumed_config(folder)
            if config_sha256(saved.to_dict()) != config_sha256(config.to_dict()):
                raise InputError(folder, "holds a run of another configuration (use --overwrite to replace it, or another --out)")
            state = "finished" if is_finished(folder) else "started"
        elif folder.exists() and not overwrite and any(folder.iterdir()):
            raise InputError(folder, "exists without a checkpoint or results: not a run of this command (use --overwrite)")
        plans.append(SeedPlan(seed, folder, config, state))
    return plans


def run_seeds(
    plans: Sequence[SeedPlan],
    dataset: Path,
    *,
    overwrite: bool = False,
    gen: Path | None = None,
    progress: ProgressFn = silent,
    say=lambda message: None,
) -> list[dict | None]:
    """Run each planned seed in turn; the results of each (None for a finished seed, skipped)."""
    outcomes = []
    for plan in plans:
        if plan.state == "finished":
            say(f"seed {plan.seed}: finished earlier ({plan.folder}), skipped")
            outcomes.append(None)
            continue
        say(f"seed {plan.seed}: {'continued from its checkpoint' if plan.state == 'started' else 'started'} in {plan.folder}")
        if plan.state == "new" and overwrite and plan.folder.exists():
            shutil.rmtree(plan.folder)
        outcomes.append(
            run_baseline(plan.config, dataset, plan.folder, resume=plan.state == "started", gen=gen, progress=progress, say=say)
        )
    return outcomes
