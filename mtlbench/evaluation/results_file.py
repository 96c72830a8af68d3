"""results.json: the evaluator's output (docs/metrics.md), its one writer and its one reader.

Results read back as inputs (single-task baselines for the multi-task deltas, a model's clean
results for a robustness set, a reference model's robustness results) are refused unless they
were computed on the dataset and split they are compared with: a baseline of another dataset
gives a meaningless Δm, silently.
"""

from __future__ import annotations

from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json, write_json

# The top-level keys of results.json that are not a task's section (task names may not take them).
NOT_TASK_SECTIONS = ("evaluator", "dataset", "submission", "counts", "bootstrap", "robustness", "multitask", "definitions")

# Where results come from: a results.json path, or a results dict already in memory.
ResultsSource = Path | str | dict


def write_results(path: Path, results: dict) -> None:
    write_json(Path(path), results)


def load_results(source: ResultsSource, role: str, fingerprint: str, split: str, *, needs_robustness: bool = False) -> dict:
    """The results of `source`, checked to be mtlbench results of the dataset `fingerprint`, split `split`.

    `role` says what they are used as ("baseline", "clean results", ...) in error messages."""
    if isinstance(source, dict):
        data, where = source, role
    else:
        data, where = read_json(source, missing=f"{role} file not found"), str(source)
    dataset = data.get("dataset") if isinstance(data, dict) else None
    sections = [key for key, value in data.items() if key not in NOT_TASK_SECTIONS and isinstance(value, dict)] if isinstance(data, dict) else []
    if not isinstance(dataset, dict) or not sections:
        raise InputError(where, f"not an mtlbench results.json (no dataset or task sections), given as {role}")
    if needs_robustness and not isinstance(data.get("robustness"), dict):
        raise InputError(where, f"not the results of a robustness set (no robustness section), given as {role}")
    if dataset.get("fingerprint") != fingerprint:
        raise InputError(
            where,
            f"{role} computed on dataset {dataset.get('name')!r} with fingerprint {dataset.get('fingerprint')}, "
            f"not on the dataset evaluated here ({fingerprint})",
        )
    if dataset.get("split") != split:
        raise InputError(where, f"{role} computed on split {dataset.get('split')!r}, not on {split!r}")
    return data
