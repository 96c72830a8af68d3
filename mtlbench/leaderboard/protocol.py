"""The protocol an entry keeps to be added to a board (docs/leaderboards.md), one refusal per rule.

Across the seeds of an entry: distinct seeds, at least MIN_SEEDS of them (fewer only when asked,
and the board shows it), one dataset (fingerprint), one configuration (hash without the seed),
one evaluator version, test results, selection on the validation split, and the same robustness
set or none. Against the board: its dataset, tasks and evaluator major version, its robustness
set; a NOT COMPARABLE run (a pretrained part randomly initialised) only on a demo board; and on a
real board, a recorded commit with no uncommitted changes and a sha256 for every weights file.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtlbench.errors import InputError
from mtlbench.leaderboard.board import track_of
from mtlbench.leaderboard.seed_result import SeedResult
from mtlbench.run_record import SELECTION_SPLIT

MIN_SEEDS = 3


def _one_value(seeds: Sequence[SeedResult], value_of, what: str) -> object:
    values = {}
    for seed in seeds:
        values.setdefault(repr(value_of(seed)), seed)
    if len(values) > 1:
        (first, a), (second, b) = list(values.items())[:2]
        raise InputError(b.where, f"{what} {second} differs from {first} of {a.where}: the seeds of one entry share it")
    return value_of(seeds[0])


def check_seeds(seeds: Sequence[SeedResult], *, allow_fewer_seeds: bool) -> None:
    seen: dict[int, SeedResult] = {}
    for seed in seeds:
        if seed.seed in seen:
            raise InputError(seed.where, f"seed {seed.seed} is also the seed of {seen[seed.seed].where}: each seed once")
        seen[seed.seed] = seed
    if len(seeds) < MIN_SEEDS and not allow_fewer_seeds:
        raise InputError(seeds[0].where, f"{len(seeds)} seed(s): an entry needs at least {MIN_SEEDS} (or --allow-fewer-seeds, which the board shows)")
    for seed in seeds:
        if seed.record["selection_split"] != SELECTION_SPLIT:
            raise InputError(seed.where, f"selected on the {seed.record['selection_split']!r} split: selection must use {SELECTION_SPLIT!r} only")
    _one_value(seeds, lambda s: s.record["dataset"]["fingerprint"], "dataset fingerprint")
    _one_value(seeds, lambda s: s.results["dataset"]["split"], "scored split")
    _one_value(seeds, lambda s: s.results["evaluator"]["version"], "evaluator version")
    _one_value(seeds, lambda s: s.record["config_sha256"], "configuration (config_sha256)")
    _one_value(seeds, lambda s: s.record["comparable"], "comparable flag")
    _one_value(seeds, lambda s: None if s.gen_results is None else s.gen_results["dataset"]["fingerprint"], "robustness set (fingerprint; none: null)")


def check_fits_board(seeds: Sequence[SeedResult], board: dict) -> None:
    first = seeds[0]
    dataset = first.record["dataset"]
    pinned = board["dataset"]
    if pinned is not None:
        if dataset["fingerprint"] != pinned["fingerprint"]:
            raise InputError(first.where, f"scored on {dataset['name']!r} fingerprint {dataset['fingerprint']}, but board {board['name']!r} is "
                             f"for {pinned['name']!r} fingerprint {pinned['fingerprint']}")
        if first.tasks != pinned["tasks"]:
            raise InputError(first.where, f"dataset tasks {first.tasks} are not the board's {pinned['tasks']}")
    major = int(first.results["evaluator"]["version"].split(".")[0])
    if board["evaluator_major"] is not None and major != board["evaluator_major"]:
        raise InputError(first.where, f"scored by evaluator {first.results['evaluator']['version']}; board {board['name']!r} holds "
                         f"evaluator {board['evaluator_major']}.x results, whose stable keys may mean something else")
    if board["track"] is not None and board["track"] != track_of(first.tasks):
        raise InputError(first.where, f"a {track_of(first.tasks)} run; board {board['name']!r} is a {board['track']} board")
    gen = first.gen_results
    if gen is not None and board["robustness_set"] is not None and gen["dataset"]["fingerprint"] != board["robustness_set"]["fingerprint"]:
        raise InputError(first.where, f"scored robustness set fingerprint {gen['dataset']['fingerprint']}, not the board's "
                         f"{board['robustness_set']['fingerprint']}")
    if board["demo"]:
        return
    for seed in seeds:
        if not seed.record["comparable"]:
            raise InputError(seed.where, f"NOT COMPARABLE (a pretrained part was randomly initialised): only demo boards take it, "
                             f"and {board['name']!r} is not one")
        git = seed.record["git"]
        if not git.get("commit"):
            raise InputError(seed.where, "no commit recorded: a board entry must name the code that produced it")
        if git.get("dirty"):
            raise InputError(seed.where, f"trained with uncommitted changes to commit {git['commit'][:12]}: the commit does not identify the code")
