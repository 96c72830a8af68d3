"""run.json: what a training run records about itself (docs/format-run.md), its one writer and reader.

The leaderboard trusts nothing it cannot check, so a run record is read strictly: every field the
protocol uses must be there with its type, and a record whose configuration hash does not match
the config.json beside it is refused (one of them was edited after the run).

The configuration hash identifies what was trained, not where: it leaves out the seed (the seeds
of one entry share everything else) and the settings that only say where files are or how many
loader processes ran. The weights files those paths name are identified by their sha256 instead.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json, write_json

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
RUN_FORMAT_VERSION = 2
SELECTION_SPLIT = "val"

# Settings that say where or how fast, not what is trained.
NOT_HASHED = (
    "train.seed",
    "model.encoder.weights",
    "model.text.weights",
    "model.gpt2.weights",
    "data.cache_dir",
    "data.workers",
)

# field: (type(s), description for the error message); nested "a.b" fields are looked up by path.
_REQUIRED = {
    "format_version": (int, "an integer"),
    "method": (str, "a string"),
    "seed": (int, "an integer"),
    "config_sha256": (str, "a sha256 hex string"),
    "selection": (str, "a string"),
    "selection_split": (str, "a string"),
    "dataset.name": (str, "a string"),
    "dataset.fingerprint": (str, "a string"),
    "dataset.tasks": (dict, "an object of task name: task type"),
    "git.commit": ((str, type(None)), "a commit hash or null"),
    "git.dirty": ((bool, type(None)), "true, false or null"),
    "mtlbench_version": (str, "a string"),
    "device_name": (str, "a string"),
    "world_size": (int, "an integer"),
    "training_seconds": ((int, float), "a number"),
    "comparable": (bool, "true or false"),
    "pretrained_weights": ((list, type(None)), "a list or null"),
}


def config_sha256(config: dict) -> str:
    """sha256 of the configuration without the NOT_HASHED settings, as canonical JSON."""
    trimmed = copy.deepcopy(config)
    for dotted in NOT_HASHED:
        *parents, leaf = dotted.split(".")
        section = trimmed
        for part in parents:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(leaf, None)
    text = json.dumps(trimmed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_run_record(run_dir: Path, record: dict) -> None:
    write_json(Path(run_dir) / RUN_FILE, {"format_version": RUN_FORMAT_VERSION, **record})


def _lookup(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return KeyError
        value = value[part]
    return value


def check_run_record(record, where: str | Path) -> dict:
    """`record` if it has every field the protocol uses with its type; else an InputError naming `where`."""
    if not isinstance(record, dict):
        raise InputError(where, "a run record is a JSON object")
    version = record.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise InputError(where, f"run record format_version {version!r}, expected {RUN_FORMAT_VERSION} (rerun, or see docs/format-run.md)")
    for dotted, (kinds, description) in _REQUIRED.items():
        value = _lookup(record, dotted)
        if value is KeyError:
            raise InputError(where, f"no {dotted} (docs/format-run.md)")
        if not isinstance(value, kinds) or (isinstance(value, bool) and kinds in (int, (int, float))):
            raise InputError(where, f"{dotted} must be {description}, got {value!r}")
    for entry in record["pretrained_weights"] or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise InputError(where, "pretrained_weights: each entry needs a file name and its sha256")
    return record


def read_run_record(run_dir: Path) -> dict:
    """The run record of a run folder, checked; the configuration hash is checked against
    config.json when the folder has one (an external submission may not)."""
    path = Path(run_dir) / RUN_FILE
    record = check_run_record(read_json(path, missing="no run.json: not a finished run folder"), path)
    config_path = Path(run_dir) / CONFIG_FILE
    if config_path.is_file() and config_sha256(read_json(config_path)) != record["config_sha256"]:
        raise InputError(path, f"config_sha256 does not match {CONFIG_FILE} beside it: one of them was changed after the run")
    return record
