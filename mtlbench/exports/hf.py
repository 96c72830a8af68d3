"""A Hugging Face `datasets.DatasetDict`, saved with `save_to_disk`, one Dataset per split with samples.

Rows hold the dataset's PNG files as bytes, so they equal the files exactly, and one or more
columns per task: a classification task's class id (ClassLabel), a multilabel task's label ids
(Sequence of ClassLabel), the segmentation mask (Image), a text task's target and context fields
(strings, named as in samples.csv). The tasks and the dataset's identity are in mtlbench.json
and, for code that only has the loaded DatasetDict, in each split's `info.description` (the same
JSON). `datasets` is imported inside `export`
because it is heavy and missing on some machines.

Two exports of the same dataset are byte-identical: `datasets` would fingerprint each split
from file paths and modification times, so the fingerprint is derived from the dataset
fingerprint and the split name instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from pathlib import Path
from typing import Iterator

from mtlbench.dataset.files import read_dataset_file
from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.exports.registry import EXPORTERS, Exporter
from mtlbench.jsonio import dump_json_line, write_json
from mtlbench.progress import Advance, ProgressFn
from mtlbench.tasks import ClassLabel, MaskFile, Task, TextLabel
from mtlbench.tasks.classification import ClassificationTask
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.segmentation import SegmentationTask
from mtlbench.taxonomies import IGNORE_INDEX

FORMAT_NAME = "mtlbench-hf-export"
FORMAT_VERSION = 2
METADATA_FILE = "mtlbench.json"
# Rows the Arrow writer holds in memory before writing them out: full-size PNGs are megabytes each.
ROWS_PER_BATCH = 32


def export(card: DatasetCard, out: Path, progress: ProgressFn) -> None:
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dataset": card.name,
        "version": card.meta["version"],
        "fingerprint": card.fingerprint,
        "tasks": [task.to_json() for task in card.tasks],
        "ignore_index": IGNORE_INDEX,
    }
    advance = progress("Exporting hf", len(card.samples))
    # Rows are first streamed to a scratch Arrow file so that memory use does not grow with the
    # dataset; save_to_disk then copies them into its own layout.
    with tempfile.TemporaryDirectory(prefix=".rows-", dir=out) as scratch, _datasets_progress_bars_off():
        _save(card, out, Path(scratch), dump_json_line(metadata).rstrip("\n"), advance)
    write_json(out / METADATA_FILE, metadata)


def _save(card: DatasetCard, out: Path, scratch: Path, description: str, advance: Advance) -> None:
    import datasets
    from datasets.arrow_writer import ArrowWriter
    from datasets.table import MemoryMappedTable

    features = datasets.Features(
        {
            "sample_id": datasets.Value("string"),
            "sequence": datasets.Value("string"),
            "frame": datasets.Value("string"),
            "image": datasets.Image(),
            **{column: feature for task in card.tasks for column, feature in _features(datasets, task).items()},
        }
    )
    info = datasets.DatasetInfo(description=description, dataset_name=card.name, features=features)
    splits = {}
    for split in card.split_names:
        samples = card.split(split)
        if not samples:
            continue
        rows_file = scratch / f"{split}.arrow"
        with ArrowWriter(features=features, path=str(rows_file), writer_batch_size=ROWS_PER_BATCH) as writer:
            for sample in samples:
                writer.write(_row(card, sample))
                advance()
            writer.finalize()
        splits[split] = datasets.Dataset(
            MemoryMappedTable.from_file(str(rows_file)),
            info=info,
            split=datasets.NamedSplit(split),
            fingerprint=_fingerprint(card, split),
        )
    datasets.DatasetDict(splits).save_to_disk(str(out))


def _features(datasets, task: Task) -> dict:
    """The columns of one task: the class id, the label ids, the mask PNG, or the texts."""
    if isinstance(task, ClassificationTask):
        return {task.name: datasets.ClassLabel(names=list(task.classes))}
    if isinstance(task, MultilabelTask):
        return {task.name: datasets.Sequence(datasets.ClassLabel(names=list(task.labels)))}
    if isinstance(task, SegmentationTask):
        return {"mask": datasets.Image()}
    return {column: datasets.Value("string") for column in task.columns()}


def _cells(card: DatasetCard, task: Task, label) -> dict:
    if isinstance(label, ClassLabel):
        return {task.name: label.id}
    if isinstance(label, MaskFile):
        return {"mask": {"bytes": read_dataset_file(card.root, label.path, label.sha256), "path": None}}
    if isinstance(label, TextLabel):
        return dict(zip(task.columns(), task.cells(label)))
    return {task.name: list(label)}


def _row(card: DatasetCard, sample: Sample) -> dict:
    row = {
        "sample_id": sample.sample_id,
        "sequence": sample.sequence,
        "frame": sample.frame,
        "image": {"bytes": read_dataset_file(card.root, sample.image, sample.image_sha256), "path": None},
    }
    for task in card.tasks:
        row.update(_cells(card, task, sample.labels[task.name]))
    return row


def _fingerprint(card: DatasetCard, split: str) -> str:
    # 16 hex digits, the length of the fingerprints `datasets` makes itself.
    return hashlib.sha256(f"{card.fingerprint}/{split}".encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def _datasets_progress_bars_off() -> Iterator[None]:
    """Silence the tqdm bars of `datasets` while mtlbench's own progress is shown."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    already_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not already_off:
            enable_progress_bars()


EXPORTERS.add("hf", Exporter(export))
