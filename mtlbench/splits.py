"""Split definitions: which sequences (videos) go to train, val and test.

A split file is JSON: {"train": [...], "val": [...], "test": [...]} listing sequence
identifiers (numbers or strings; compared as strings). Splits always keep a sequence whole.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from mtlbench.dataset.manifest import SPLITS
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json

SplitMap = dict[str, tuple[str, ...]]


def read_split_file(path: Path) -> SplitMap:
    data = read_json(path, missing="split file not found")
    if not isinstance(data, dict) or not data or set(data) - set(SPLITS):
        raise InputError(path, f"must be an object whose keys are among {', '.join(SPLITS)}")
    splits: SplitMap = {}
    for name in SPLITS:
        members = data.get(name, [])
        if not isinstance(members, list) or not all(isinstance(m, (int, str)) and not isinstance(m, bool) for m in members):
            raise InputError(path, f"{name!r} must be a list of sequence numbers or names")
        splits[name] = tuple(str(m) for m in members)
    check_disjoint(splits, path)
    return splits


def check_disjoint(splits: SplitMap, where: str | Path) -> None:
    seen: dict[str, str] = {}
    for name, members in splits.items():
        for member in members:
            if member in seen:
                raise InputError(where, f"sequence {member!r} is in both {seen[member]!r} and {name!r}")
            seen[member] = name


def split_of(splits: SplitMap) -> dict[str, str]:
    """Sequence -> split name."""
    return {member: name for name, members in splits.items() for member in members}


def hash_order(items: Iterable[str], seed: int) -> list[str]:
    """A deterministic shuffle that does not depend on the order or the number of other items."""
    return sorted(items, key=lambda item: hashlib.sha256(f"{seed}:{item}".encode()).hexdigest())


def default_video_split(videos: Iterable[str], seed: int, where: str | Path) -> SplitMap:
    """Whole videos to train / val / test: 20% test and 10% val (at least one each), by hash order."""
    ordered = hash_order(set(videos), seed)
    if len(ordered) < 3:
        raise InputError(where, f"found {len(ordered)} video(s); a default split needs 3 or more (give --split-file)")
    n_test = max(1, round(0.2 * len(ordered)))
    n_val = max(1, round(0.1 * len(ordered)))
    return {
        "train": tuple(sorted(ordered[n_test + n_val :])),
        "val": tuple(sorted(ordered[n_test : n_test + n_val])),
        "test": tuple(sorted(ordered[:n_test])),
    }


def whole_sequence_splits(
    split_file: Path | None, sequences: Iterable[str], seed: int, where: str | Path, unit: str, default_source: str
) -> tuple[SplitMap, dict]:
    """The split map, from `split_file` or else `default_video_split`, and how it was obtained (for
    build_parameters); `unit` names the sequences in the recorded rule ("videos", "procedures")."""
    if split_file is not None:
        splits, record = read_split_file(Path(split_file)), {"source": "split file"}
    else:
        rule = f"whole {unit} in hash_order({unit}, seed): 20% test, 10% val (at least one each), the rest train"
        splits, record = default_video_split(sequences, seed, where), {"source": default_source, "rule": rule, "seed": seed}
    return splits, record | {name: list(members) for name, members in splits.items()}
