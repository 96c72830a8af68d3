"""GRID.json: a sweep's grid (docs/sweeps.md), its one reader.

    {
      "presets": ["endoarss-tiny"],
      "variants": {"db-mtl": [], "ew": ["weighting.name=ew"]},      optional; default {"default": []}
      "datasets": ["data/mtlendovis", {"path": "data/mtlendovis", "gen": "data/mtlendovis-gen"}],
      "seeds": [0, 1, 2],
      "weights": "weights/dinov2_vitb14_pretrain.pth",               optional
      "board": {"name": "mtlendovis", "boards_dir": "leaderboards", "demo": false, "allow_fewer_seeds": false}   optional
    }

Relative paths are relative to the grid file's folder. Every combination's configuration is made
and checked when the grid is read, so a bad value stops the sweep before any run starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.leaderboard.board import DEFAULT_BOARDS_DIR, check_name

_KEYS = ("presets", "variants", "datasets", "seeds", "weights", "board")
_BOARD_KEYS = ("name", "boards_dir", "demo", "allow_fewer_seeds", "title")
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Cell:
    """One entry-to-be: a preset, a variant (its overrides) and a dataset, run for every seed."""

    preset: str
    variant: str
    overrides: tuple[str, ...]
    dataset: Path
    gen: Path | None

    @property
    def name(self) -> str:
        return self.preset if self.variant == DEFAULT_VARIANT else f"{self.preset}+{self.variant}"

    def folder(self, out: Path) -> Path:
        return Path(out) / self.name / self.dataset.name


@dataclass(frozen=True)
class BoardTarget:
    name: str
    boards_dir: Path
    demo: bool
    allow_fewer_seeds: bool
    title: str | None


@dataclass(frozen=True)
class Grid:
    cells: tuple[Cell, ...]
    seeds: tuple[int, ...]
    weights: Path | None
    board: BoardTarget | None

    def overrides(self, cell: Cell) -> list[str]:
        """A cell's --set overrides, the weights file included."""
        extra = [f"model.encoder.weights={json.dumps(str(self.weights))}"] if self.weights else []
        return [*cell.overrides, *extra]


def _strings(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise InputError(where, "expected a list of non-empty strings")
    return value


def _path(base: Path, value, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise InputError(where, "expected a path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _datasets(base: Path, value, where: str) -> list[tuple[Path, Path | None]]:
    if not isinstance(value, list) or not value:
        raise InputError(where, "datasets: expected a non-empty list of paths or {\"path\", \"gen\"} objects")
    datasets = []
    for index, item in enumerate(value):
        here = f"{where}: datasets[{index}]"
        if isinstance(item, dict):
            unknown = set(item) - {"path", "gen"}
            if unknown or "path" not in item:
                raise InputError(here, "expected {\"path\": ..., \"gen\": ... (optional)}")
            datasets.append((_path(base, item["path"], here), _path(base, item["gen"], here) if item.get("gen") else None))
        else:
            datasets.append((_path(base, item, here), None))
    names = [path.name for path, _ in datasets]
    if len(set(names)) != len(names):
        raise InputError(where, "two datasets share a folder name: their runs would share a folder")
    return datasets


def _board(base: Path, value, where: str) -> BoardTarget | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "name" not in value or set(value) - set(_BOARD_KEYS):
        raise InputError(where, f"board: expected an object with name and optionally {', '.join(_BOARD_KEYS[1:])}")
    flags = {key: value.get(key, False) for key in ("demo", "allow_fewer_seeds")}
    if not all(isinstance(flag, bool) for flag in flags.values()):
        raise InputError(where, "board: demo and allow_fewer_seeds are true or false")
    boards_dir = _path(base, value["boards_dir"], where) if "boards_dir" in value else DEFAULT_BOARDS_DIR
    return BoardTarget(check_name(value["name"], f"{where}: board.name"), boards_dir, title=value.get("title"), **flags)


def read_grid(path: Path) -> Grid:
    """The grid of `path`, with every combination's configuration checked."""
    from baselines.config import load_config

    path = Path(path)
    data = read_json(path)
    where = str(path)
    if not isinstance(data, dict):
        raise InputError(where, "a grid is a JSON object (docs/sweeps.md)")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise InputError(where, f"unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
    for key in ("presets", "datasets", "seeds"):
        if key not in data:
            raise InputError(where, f"no {key!r} (docs/sweeps.md)")
    base = path.parent
    presets = _strings(data["presets"], f"{where}: presets")
    variants = data.get("variants", {DEFAULT_VARIANT: []})
    if not isinstance(variants, dict) or not variants:
        raise InputError(where, "variants: expected an object of name: [overrides]")
    for variant in variants:
        check_name(variant, f"{where}: variants")
    seeds = data["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError(where, "seeds: expected a non-empty list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise InputError(where, "seeds: a seed is named twice")
    weights = _path(base, data["weights"], f"{where}: weights") if data.get("weights") else None
    cells = []
    for preset in presets:
        for variant, overrides in variants.items():
            overrides = tuple(_strings(overrides, f"{where}: variants.{variant}")) if overrides else ()
            for dataset, gen in _datasets(base, data["datasets"], where):
                cells.append(Cell(preset, variant, overrides, dataset, gen))
    grid = Grid(tuple(cells), tuple(seeds), weights, _board(base, data.get("board"), where))
    for cell in grid.cells:
        try:
            load_config(cell.preset, [*grid.overrides(cell), f"train.seed={seeds[0]}"])
        except InputError as error:
            raise InputError(where, f"{cell.name}: {error}") from None
        for dataset in (cell.dataset, cell.gen):
            if dataset is not None and not (dataset / "dataset.json").is_file():
                raise InputError(dataset, f"{where}: not a built dataset (no dataset.json)")
    return grid
