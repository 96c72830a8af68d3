"""Board files: BOARDS_DIR/<name>.json, the source of truth of a leaderboard (docs/leaderboards.md),
their one writer and one reader; each entry's pictures lie in BOARDS_DIR/<name>/<entry>/seed-N/.

A board is created empty (`leaderboard add --new`, or `leaderboard new`) and pins, with its
first entry, the dataset (name, version, fingerprint, tasks), the evaluator's major version and,
when seeds scored one, the robustness set. Entries are kept sorted by id and every derived
number is recomputed on writing, so that a rebuild writes the same bytes and a reviewer's diff
shows only what changed.
"""

from __future__ import annotations

import re
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json, write_json
from mtlbench.leaderboard.summary import entry_summary
from mtlbench.metrics.multitask import DELTA_METRICS

BOARD_FORMAT = "mtlbench-leaderboard"
BOARD_FORMAT_VERSION = 1
DEFAULT_BOARDS_DIR = Path("leaderboards")
TRACKS = ("endoarss", "vision-language")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")

_BOARD_KEYS = ("format", "format_version", "name", "title", "track", "demo", "dataset", "evaluator_major",
               "robustness_set", "headline_metrics", "single_task_baselines", "robustness_reference", "entries")
_ENTRY_KEYS = ("id", "name", "method", "config_sha256", "comparable", "fewer_seeds", "seeds", "summary")
_SEED_KEYS = ("seed", "tasks_scored", "metrics", "ci", "robustness", "provenance", "pictures")


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(what, f"{name!r}: use lower-case letters, digits, '.', '_' and '-' (at most 80, starting with a letter or digit)")
    return name


def slug(text: str) -> str:
    """An entry id from a name: lower case, anything but letters, digits, '.', '_' and '-' as '-'."""
    value = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return value[:80] or "entry"


def board_path(boards_dir: Path, name: str) -> Path:
    return Path(boards_dir) / f"{check_name(name, '--board')}.json"


def pictures_dir(boards_dir: Path, name: str) -> Path:
    return Path(boards_dir) / name


def track_of(tasks: dict[str, str]) -> str:
    return "endoarss" if "segmentation" in tasks.values() else "vision-language"


def new_board(name: str, *, track: str | None, demo: bool, title: str | None = None) -> dict:
    check_name(name, "--board")
    if track is not None and track not in TRACKS:
        raise InputError("--track", f"{track!r} is not one of: {', '.join(TRACKS)}")
    return {
        "format": BOARD_FORMAT,
        "format_version": BOARD_FORMAT_VERSION,
        "name": name,
        "title": title or name,
        "track": track,
        "demo": demo,
        "dataset": None,
        "evaluator_major": None,
        "robustness_set": None,
        "headline_metrics": [],
        "single_task_baselines": [],
        "robustness_reference": None,
        "entries": [],
    }


def headline_metrics(tasks: dict[str, str]) -> list[str]:
    return [f"{task}.{metric}" for task, kind in tasks.items() for metric in DELTA_METRICS.get(kind, ())]


def with_summaries(board: dict) -> dict:
    """The board with its entries sorted by id, every summary recomputed, and as headline metrics
    those of the dataset's tasks that some entry scored (an EndoARSS run on a dataset that also has
    text tasks does not fill the board with empty columns)."""
    entries = sorted(board["entries"], key=lambda entry: entry["id"])
    scored = {task for entry in entries for seed in entry["seeds"] for task in seed["tasks_scored"]}
    tasks = (board["dataset"] or {}).get("tasks") or {}
    board = {**board, "entries": entries, "headline_metrics": headline_metrics({t: k for t, k in tasks.items() if t in scored})}
    board["entries"] = [{**entry, "summary": entry_summary(entry, board)} for entry in entries]
    return board


def write_board(path: Path, board: dict) -> dict:
    board = with_summaries(board)
    write_json(path, {key: board[key] for key in _BOARD_KEYS})
    return board


def _require(mapping, keys, where: Path, what: str) -> None:
    if not isinstance(mapping, dict):
        raise InputError(where, f"{what} is not a JSON object")
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise InputError(where, f"{what} has no {missing[0]!r} (docs/leaderboards.md)")


def read_board(path: Path) -> dict:
    """A board file, checked: its format, every entry's fields, and that every stored summary is the
    one its seeds give."""
    path = Path(path)
    board = read_json(path, missing="no such board (create it with leaderboard add --new, or leaderboard new)")
    _require(board, _BOARD_KEYS, path, "the board")
    if board["format"] != BOARD_FORMAT or board["format_version"] != BOARD_FORMAT_VERSION:
        raise InputError(path, f"not an mtlbench board of format version {BOARD_FORMAT_VERSION}")
    if board["name"] != path.stem:
        raise InputError(path, f"names itself {board['name']!r}: a board file is called <name>.json")
    ids = set()
    for index, entry in enumerate(board["entries"]):
        _require(entry, _ENTRY_KEYS, path, f"entry {index + 1}")
        if entry["id"] in ids:
            raise InputError(path, f"entry id {entry['id']!r} occurs twice")
        ids.add(entry["id"])
        if not entry["seeds"]:
            raise InputError(path, f"entry {entry['id']!r} has no seeds")
        for seed in entry["seeds"]:
            _require(seed, _SEED_KEYS, path, f"a seed of entry {entry['id']!r}")
    for name in [*board["single_task_baselines"], *([board["robustness_reference"]] if board["robustness_reference"] else [])]:
        if name not in ids:
            raise InputError(path, f"names entry {name!r} as a baseline or reference, but has no such entry")
    recomputed = with_summaries(board)
    for stored, fresh in zip(sorted(board["entries"], key=lambda e: e["id"]), recomputed["entries"]):
        if stored["summary"] != fresh["summary"]:
            raise InputError(path, f"the summary of entry {stored['id']!r} is not what its seeds give (edited by hand?)")
    return recomputed


def list_boards(boards_dir: Path) -> list[Path]:
    return sorted(path for path in Path(boards_dir).glob("*.json") if _NAME.match(path.stem))
