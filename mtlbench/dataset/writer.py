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
from typing import Callable, Protocol, Sequence

import numpy as np

from mtlbench import __version__, pngio
from mtlbench.dataset.manifest import FORMAT_NAME, FORMAT_VERSION, Sample, fingerprint, manifest_text, vocabulary_json
from mtlbench.errors import InputError
from mtlbench.jsonio import dump_json
from mtlbench.outputs import atomic_folder
from mtlbench.parallel import ordered_map
from mtlbench.progress import ProgressFn, silent
from mtlbench.taxonomies import IGNORE_INDEX, SegClass

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
    activity_id: int
    image: ImageSource
    mask: MaskSource
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
    classes: tuple[SegClass, ...]
    activities: tuple[str, ...]
    splits: tuple[str, ...]
    build_parameters: dict
    splits_from: str  # where the split definition comes from (a split file, or the builder's default), for errors
    extra_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Converted:
    sample: Sample
    pixel_counts: np.ndarray
    unmapped: dict[str, int]


@dataclass(frozen=True)
class _ConvertTask:
    job: SampleJob
    staging: Path
    activity: str
    num_classes: int


def _convert(task: _ConvertTask) -> _Converted:
    job = task.job
    image = job.image.load()
    height, width = image.shape[:2]
    decoded = job.mask.decode(height, width)
    if decoded.mask.shape != (height, width):
        mask_height, mask_width = decoded.mask.shape
        raise InputError(
            job.mask.describe(), f"label size {mask_width}x{mask_height} differs from its frame's {width}x{height}"
        )
    counts = np.bincount(decoded.mask.ravel(), minlength=256)
    out_of_range = np.flatnonzero(counts[task.num_classes : IGNORE_INDEX])
    if out_of_range.size:
        raise InputError(job.mask.describe(), f"class value {int(out_of_range[0]) + task.num_classes} is out of range")
    image_path = f"images/{job.sample_id}.png"
    mask_path = f"masks/{job.sample_id}.png"
    sample = Sample(
        sample_id=job.sample_id,
        split=job.split,
        sequence=job.sequence,
        frame=job.frame,
        activity=task.activity,
        activity_id=job.activity_id,
        image=image_path,
        mask=mask_path,
        width=width,
        height=height,
        image_sha256=pngio.write_png(task.staging / image_path, image),
        mask_sha256=pngio.write_png(task.staging / mask_path, decoded.mask),
        extra=dict(job.extra),
    )
    return _Converted(sample, counts, decoded.unmapped)


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
    with atomic_folder(Path(out), overwrite=overwrite) as staging:
        tasks = [_ConvertTask(job, staging, spec.activities[job.activity_id], len(spec.classes)) for job in jobs]
        advance = progress(f"Building {spec.name}", len(tasks))
        converted = list(ordered_map(_convert, tasks, workers, advance))
        samples = [item.sample for item in converted]
        (staging / "samples.csv").write_text(manifest_text(samples, spec.extra_columns), encoding="utf-8")
        meta = _describe(spec, converted, skips)
        (staging / "dataset.json").write_text(dump_json(meta), encoding="utf-8")
        if finalise is not None:
            finalise(staging)
    return Path(out)


def _describe(spec: DatasetSpec, converted: list[_Converted], skips: Sequence[Skip]) -> dict:
    splits = {}
    unmapped_total: Counter[str] = Counter()
    for split in spec.splits:
        items = [item for item in converted if item.sample.split == split]
        pixels = sum((item.pixel_counts for item in items), np.zeros(256, dtype=np.int64))
        activity_counts = Counter(item.sample.activity_id for item in items)
        for item in items:
            unmapped_total.update(item.unmapped)
        splits[split] = {
            "samples": len(items),
            "sequences": sorted({item.sample.sequence for item in items}, key=_natural_key),
            "activity_counts": {name: activity_counts.get(i, 0) for i, name in enumerate(spec.activities)},
            "pixel_counts": {cls.name: int(pixels[cls.id]) for cls in spec.classes},
            "ignored_pixels": int(pixels[IGNORE_INDEX]),
        }
    samples = [item.sample for item in converted]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "version": spec.version,
        "builder": {"name": spec.name, "version": spec.builder_version, "mtlbench_version": __version__},
        "source": spec.source,
        "ignore_index": IGNORE_INDEX,
        **vocabulary_json(spec.classes, spec.activities),
        "splits": splits,
        "build_parameters": spec.build_parameters,
        "skipped": summarise_skips(skips),
        "unmapped_label_values": [
            {"value": value, "pixels": count}
            for value, count in sorted(unmapped_total.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNMAPPED_VALUES]
        ],
        "fingerprint": fingerprint(samples, spec.extra_columns),
    }


def _natural_key(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
