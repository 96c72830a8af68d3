"""Writing a dataset folder from the samples a builder has found.

A builder only discovers its inputs and describes each sample as a `SampleJob` whose image and
mask are lazy sources; this module checks that every declared split has samples, decodes them
(in parallel), writes images/ and masks/, collects the statistics of dataset.json, runs the
caller's finalise step (e.g. exports) on the complete folder and commits it atomically.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from mtlbench import __version__, pngio
from mtlbench.dataset.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Sample,
    fingerprint,
    manifest_columns,
    manifest_text,
    sample_row,
)
from mtlbench.errors import InputError
from mtlbench.jsonio import dump_json
from mtlbench.outputs import atomic_folder
from mtlbench.parallel import ordered_map
from mtlbench.progress import ProgressFn, silent
from mtlbench.tasks import MaskFile, Task
from mtlbench.tasks.segmentation import MASKS_FOLDER, SegmentationTask
from mtlbench.taxonomies import IGNORE_INDEX

MAX_EXAMPLES = 5
MAX_UNMAPPED_VALUES = 10


@dataclass(frozen=True)
class MaskDecoding:
    mask: np.ndarray  # (H, W) uint8 class ids, IGNORE_INDEX where unknown
    unmapped: dict[str, int] = field(default_factory=dict)  # source value described -> pixels set to ignore


class ImageSource(Protocol):
    def describe(self) -> str: ...

    def load(self) -> np.ndarray: ...


class MaskSource(Protocol):
    def describe(self) -> str: ...

    def decode(self, height: int, width: int) -> MaskDecoding: ...


@dataclass(frozen=True)
class FileImage:
    path: Path

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> np.ndarray:
        return pngio.read_rgb(self.path)


@dataclass(frozen=True)
class SampleJob:
    sample_id: str
    split: str
    sequence: str
    frame: str
    image: ImageSource
    labels: dict[str, Any]  # task name -> label as its task type takes it (a class id, label ids, a TextLabel)
    mask: MaskSource | None = None  # the label of the segmentation task, if the dataset has one
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Skip:
    reason: str
    item: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    version: str
    builder_version: str
    source: dict
    tasks: tuple[Task, ...]
    splits: tuple[str, ...]
    build_parameters: dict
    splits_from: str  # where the split definition comes from (a split file, or the builder's default), for errors
    extra_columns: tuple[str, ...] = ()

    @property
    def segmentation(self) -> SegmentationTask | None:
        return next((task for task in self.tasks if isinstance(task, SegmentationTask)), None)


@dataclass(frozen=True)
class _Converted:
    sample: Sample
    pixel_counts: np.ndarray
    unmapped: dict[str, int]


@dataclass(frozen=True)
class _ConvertTask:
    job: SampleJob
    labels: dict[str, Any]  # checked, in stored form; the segmentation task's is added by _convert
    segmentation: str | None  # the segmentation task's name
    num_classes: int
    staging: Path


def _decode_mask(job: SampleJob, height: int, width: int, num_classes: int) -> tuple[MaskDecoding, np.ndarray]:
    """The decoded mask, checked, and its pixel count per value."""
    decoded = job.mask.decode(height, width)
    if decoded.mask.shape != (height, width):
        mask_height, mask_width = decoded.mask.shape
        raise InputError(
            job.mask.describe(), f"label size {mask_width}x{mask_height} differs from its frame's {width}x{height}"
        )
    counts = np.bincount(decoded.mask.ravel(), minlength=256)
    out_of_range = np.flatnonzero(counts[num_classes:IGNORE_INDEX])
    if out_of_range.size:
        raise InputError(job.mask.describe(), f"class value {int(out_of_range[0]) + num_classes} is out of range")
    return decoded, counts


def _convert(task: _ConvertTask) -> _Converted:
    job = task.job
    image = job.image.load()
    height, width = image.shape[:2]
    image_path = f"images/{job.sample_id}.png"
    labels = dict(task.labels)
    counts, unmapped = np.zeros(256, dtype=np.int64), {}
    if task.segmentation is not None:
        decoded, counts = _decode_mask(job, height, width, task.num_classes)
        unmapped = decoded.unmapped
        mask_path = f"{MASKS_FOLDER}/{job.sample_id}.png"
        labels[task.segmentation] = MaskFile(mask_path, pngio.write_png(task.staging / mask_path, decoded.mask))
    sample = Sample(
        sample_id=job.sample_id,
        split=job.split,
        sequence=job.sequence,
        frame=job.frame,
        image=image_path,
        width=width,
        height=height,
        image_sha256=pngio.write_png(task.staging / image_path, image),
        labels=labels,
        extra=dict(job.extra),
    )
    return _Converted(sample, counts, unmapped)


def _checked_labels(spec: DatasetSpec, job: SampleJob) -> dict[str, Any]:
    """The job's labels in stored form, one per task but the segmentation task (whose mask the
    conversion decodes); checked here, before any frame is converted."""
    where = job.image.describe()
    expected = {task.name for task in spec.tasks if task is not spec.segmentation}
    if set(job.labels) != expected:
        raise InputError(where, f"labels for tasks {sorted(job.labels)} differ from the dataset's {sorted(expected)}")
    if (job.mask is None) != (spec.segmentation is None):
        raise InputError(where, "a mask is given exactly when the dataset has a segmentation task")
    return {task.name: task.check(job.labels[task.name], where) for task in spec.tasks if task is not spec.segmentation}


def _check_unique_ids(jobs: Sequence[SampleJob]) -> None:
    first_seen: dict[str, SampleJob] = {}
    for job in jobs:
        if job.sample_id in first_seen:
            other = first_seen[job.sample_id]
            raise InputError(job.image.describe(), f"sample_id {job.sample_id!r} collides with {other.image.describe()}")
        first_seen[job.sample_id] = job


def summarise_skips(skips: Sequence[Skip]) -> dict:
    by_reason: dict[str, list[str]] = {}
    for skip in skips:
        by_reason.setdefault(skip.reason, []).append(skip.item)
    return {
        reason: {"count": len(items), "examples": sorted(items)[:MAX_EXAMPLES]}
        for reason, items in sorted(by_reason.items())
    }


def check_splits_have_samples(spec: DatasetSpec, jobs: Sequence[SampleJob], allow_empty_splits: bool) -> None:
    """Every declared split needs samples: a dataset without test (or train, or val) is almost
    always a mistake in the split definition, unless the caller says it is intended."""
    if not jobs:
        raise InputError(spec.splits_from, f"no usable frames found in the inputs of {spec.name}")
    empty = [split for split in spec.splits if not any(job.split == split for job in jobs)]
    if empty and not allow_empty_splits:
        raise InputError(
            spec.splits_from,
            f"split(s) {', '.join(map(repr, empty))} would have no samples (none of their sequences is given, "
            "or none was found in the source); pass --allow-empty-splits if this is intended",
        )


def build_dataset(
    spec: DatasetSpec,
    jobs: Sequence[SampleJob],
    skips: Sequence[Skip],
    out: Path,
    *,
    overwrite: bool = False,
    workers: int = 1,
    allow_empty_splits: bool = False,
    finalise: Callable[[Path], None] | None = None,
    progress: ProgressFn = silent,
) -> Path:
    """Decode every job into a new dataset folder at `out`; returns `out`.

    `finalise(folder)` runs on the complete folder before it is committed (a failure there
    leaves nothing behind either)."""
    check_splits_have_samples(spec, jobs, allow_empty_splits)
    _check_unique_ids(jobs)
    jobs = sorted(jobs, key=lambda job: (spec.splits.index(job.split), job.sample_id))
    labels = [_checked_labels(spec, job) for job in jobs]
    segmentation = spec.segmentation
    with atomic_folder(Path(out), overwrite=overwrite) as staging:
        tasks = [
            _ConvertTask(job, checked, segmentation and segmentation.name, len(segmentation.classes) if segmentation else 0, staging)
            for job, checked in zip(jobs, labels)
        ]
        advance = progress(f"Building {spec.name}", len(tasks))
        converted = list(ordered_map(_convert, tasks, workers, advance))
        header = manifest_columns(spec.tasks, spec.extra_columns)
        rows = [sample_row(item.sample, spec.tasks) for item in converted]
        (staging / "samples.csv").write_text(manifest_text(header, rows), encoding="utf-8")
        meta = _describe(spec, converted, skips, fingerprint(header, rows))
        (staging / "dataset.json").write_text(dump_json(meta), encoding="utf-8")
        if finalise is not None:
            finalise(staging)
    return Path(out)


def _describe(spec: DatasetSpec, converted: list[_Converted], skips: Sequence[Skip], fingerprint_: str) -> dict:
    splits = {}
    unmapped_total: Counter[str] = Counter()
    for split in spec.splits:
        items = [item for item in converted if item.sample.split == split]
        pixels = sum((item.pixel_counts for item in items), np.zeros(256, dtype=np.int64))
        for item in items:
            unmapped_total.update(item.unmapped)
        splits[split] = {
            "samples": len(items),
            "sequences": sorted({item.sample.sequence for item in items}, key=_natural_key),
            "tasks": {
                task.name: task.split_statistics([item.sample.labels[task.name] for item in items], pixels) for task in spec.tasks
            },
        }
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "version": spec.version,
        "builder": {"name": spec.name, "version": spec.builder_version, "mtlbench_version": __version__},
        "source": spec.source,
        "ignore_index": IGNORE_INDEX,
        "tasks": [task.to_json() for task in spec.tasks],
        "splits": splits,
        "build_parameters": spec.build_parameters,
        "skipped": summarise_skips(skips),
        "unmapped_label_values": [
            {"value": value, "pixels": count}
            for value, count in sorted(unmapped_total.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNMAPPED_VALUES]
        ],
        "fingerprint": fingerprint_,
    }


def _natural_key(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
