"""Sweeps end to end: the local executor, submitit's local executor (the SLURM path), resumption,
the board entries they end with, and the grid's refusals (docs/sweeps.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_RUN, write_endovis_source

from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.errors import InputError
from mtlbench.leaderboard.board import read_board
from mtlbench.sweep.grid import read_grid
from mtlbench.sweep.run import SweepOptions, run_sweep

TINY = [*TINY_RUN, "train.epochs=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    return build_mtlendovis(write_endovis_source(root), root / "mtlendovis")


def write_grid(folder: Path, dataset: Path, **changes) -> Path:
    grid = {
        "presets": ["endoarss-tiny"],
        "variants": {"tiny": TINY, "tiny-ew": [*TINY, "weighting.name=ew"]},
        "datasets": [str(dataset)],
        "seeds": [0, 1],
        "board": {"name": "sweep", "boards_dir": "boards", "demo": True, "allow_fewer_seeds": True},
        **changes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grid.json").write_text(json.dumps(grid))
    return folder / "grid.json"


def test_a_local_sweep_runs_every_cell_resumes_and_fills_its_board(dataset: Path, tmp_path: Path):
    grid = write_grid(tmp_path, dataset, variants={"tiny": TINY})
    out = tmp_path / "sweep"
    result = subprocess.run([sys.executable, "-m", "mtlbench", "sweep", grid, "--out", out, "--parallel", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 runs in the grid, 0 finished earlier, 2 to run (local)" in result.stdout
    assert sorted(p.name for p in (out / "endoarss-tiny+tiny" / "mtlendovis").iterdir()) == ["seed-0", "seed-1"]
    board = read_board(tmp_path / "boards" / "sweep.json")
    assert [entry["id"] for entry in board["entries"]] == ["endoarss-tiny-tiny"]
    assert [seed["seed"] for seed in board["entries"][0]["seeds"]] == [0, 1]
    before = (tmp_path / "boards" / "sweep.json").read_bytes()
    summary = run_sweep(grid, SweepOptions(out=out))  # nothing left to run; the entry is added again, unchanged
    assert summary == {"jobs": 0, "failed": [], "added": ["endoarss-tiny-tiny"]}
    assert (tmp_path / "boards" / "sweep.json").read_bytes() == before


def test_the_slurm_path_through_submitits_local_executor(dataset: Path, tmp_path: Path):
    grid = write_grid(tmp_path, dataset, variants={"tiny-ew": [*TINY, "weighting.name=ew"]}, seeds=[3])
    summary = run_sweep(grid, SweepOptions(out=tmp_path / "sweep", executor="submitit-local", slurm={"timeout_min": 10}))
    assert summary == {"jobs": 1, "failed": [], "added": ["endoarss-tiny-tiny-ew"]}
    assert (tmp_path / "sweep" / "submitit").is_dir()
    config = json.loads((tmp_path / "sweep" / "endoarss-tiny+tiny-ew" / "mtlendovis" / "seed-3" / "config.json").read_text())
    assert config["weighting"]["name"] == "ew" and config["train"]["seed"] == 3


def test_a_failed_run_is_reported_with_its_log_and_its_cell_not_added(dataset: Path, tmp_path: Path):
    other = build_mtlendovis(write_endovis_source(tmp_path / "other-source"), tmp_path / "other")
    grid = write_grid(tmp_path, dataset, variants={"tiny": TINY}, seeds=[0],
                      datasets=[{"path": str(dataset), "gen": str(other)}])  # --gen of a dataset that is not a robustness set
    summary = run_sweep(grid, SweepOptions(out=tmp_path / "sweep"))
    assert summary["jobs"] == 1 and summary["added"] == [] and len(summary["failed"]) == 1
    assert "robustness set" in Path(summary["failed"][0]).read_text()
    assert not (tmp_path / "boards" / "sweep.json").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"presets": ["no-such-preset"]}, "unknown preset"),
        ({"variants": {"bad": ["optim.lr=-1"]}}, r"endoarss-tiny\+bad: optim.lr: must be above 0"),
        ({"seeds": [0, 0]}, "a seed is named twice"),
        ({"datasets": ["missing"]}, "not a built dataset"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"board": {"name": "Bad Name"}}, "board.name"),
    ],
)
def test_a_bad_grid_is_refused_before_any_run(dataset: Path, tmp_path: Path, change: dict, message: str):
    grid = write_grid(tmp_path, dataset, **change)
    with pytest.raises(InputError, match=message):
        read_grid(grid)
