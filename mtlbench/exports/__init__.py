"""Copies of a dataset folder in other tools' formats, written to <dataset>/exports/<name>/.

Each exporter (registered by name in EXPORTERS, one per file) reads the dataset through its
card, every file checked against samples.csv, and writes into an empty folder. `run_exports`
gives it a temporary folder that replaces the old export only once complete, so re-exporting an
existing dataset is atomic too. The formats are documented in docs/format-dataset.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.exports.registry import EXPORTERS
from mtlbench.outputs import atomic_folder
from mtlbench.progress import ProgressFn, silent
from mtlbench.tasks import Task

EXPORTS_FOLDER = "exports"


def checked_export_names(names: Sequence[str], where: str = "--export") -> tuple[str, ...]:
    """The names without repeats, each a registered exporter (else a one-line error naming `where`)."""
    for name in names:
        EXPORTERS.get(name, where)
    return tuple(dict.fromkeys(names))


def check_exportable(names: Sequence[str], tasks: Sequence[Task], dataset: str, where: str = "--export") -> None:
    """Refuse, before anything is written, an export that cannot represent the dataset's tasks."""
    for name in names:
        reason = EXPORTERS.get(name, where).unsupported(tasks)
        if reason:
            raise InputError(where, f"export {name!r} cannot be written for {dataset}: {reason}")


def run_exports(dataset_dir: Path, names: Sequence[str], progress: ProgressFn = silent, where: str = "--export") -> None:
    """Write each named export of the dataset at `dataset_dir`, replacing any earlier one; `where`
    names the option the names came from, for errors."""
    names = checked_export_names(names, where)
    dataset_dir = Path(dataset_dir)
    card = read_dataset(dataset_dir)
    check_exportable(names, card.tasks, card.name, where)
    for name in names:
        with atomic_folder(dataset_dir / EXPORTS_FOLDER / name, overwrite=True) as staging:
            EXPORTERS.get(name).write(card, staging, progress)
