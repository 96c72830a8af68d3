"""Copies of a dataset folder in other tools' formats, written to <dataset>/exports/<name>/.

Each exporter is `export(card, out, progress)`: it reads the dataset through `card` and writes
into the empty folder `out`. `run_exports` gives it a temporary folder that replaces the old
export only once complete, so re-exporting an existing dataset is atomic too. The formats are
documented in docs/format-dataset.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from mtlbench.atomic import atomic_folder
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.errors import InputError
from mtlbench.exports import coco, endoarss, hf
from mtlbench.progress import ProgressFn, silent

Exporter = Callable[[DatasetCard, Path, ProgressFn], None]

EXPORTERS: dict[str, Exporter] = {
    "endoarss": endoarss.export,
    "coco": coco.export,
    "hf": hf.export,
}

EXPORTS_FOLDER = "exports"


def run_exports(dataset_dir: Path, names: Sequence[str], progress: ProgressFn = silent) -> None:
    """Write each named export of the dataset at `dataset_dir`, replacing any earlier one."""
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise InputError("export", f"unknown export {unknown[0]!r} (choose from: {', '.join(EXPORTERS)})")
    dataset_dir = Path(dataset_dir)
    card = read_dataset(dataset_dir)
    for name in dict.fromkeys(names):
        with atomic_folder(dataset_dir / EXPORTS_FOLDER / name, overwrite=True) as staging:
            EXPORTERS[name](card, staging, progress)
