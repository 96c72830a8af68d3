"""MTLEndovis-Gen: a built dataset's test frames under image corruptions, for robustness.

One sample per (frame, corruption, severity), with the clean frame's mask and activity, and the
manifest columns `corruption`, `severity` and `clean_sample_id`. Any built dataset can be the
base (MTLEndovis by default; MTLESD works too). Each output's seed derives from (seed, sample_id,
corruption, severity), so a rebuild is byte-identical whatever the number of workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions, write_dataset
from mtlbench.corruptions import DEFAULT_CORRUPTIONS, SEVERITIES, check_severities, describe_parameters, output_seed
from mtlbench.corruptions.registry import CORRUPTIONS
from mtlbench.dataset.manifest import Sample, read_dataset
from mtlbench.dataset.writer import DatasetSpec, SampleJob
from mtlbench.errors import InputError
from mtlbench.sources.corrupted import CLEAN, CorruptedImage, DatasetMask
from mtlbench.tasks import MaskFile

VERSION = "1.0.0"
BUILDER_VERSION = "1.0.0"
EXTRA_COLUMNS = ("corruption", "severity", "clean_sample_id")


def _check_choices(corruptions: Sequence[str], severities: Sequence[int]) -> None:
    if not corruptions:
        raise InputError("--corruptions", f"give at least one corruption (known: {', '.join(CORRUPTIONS.names())})")
    for name in corruptions:
        CORRUPTIONS.get(name, "--corruptions")
    check_severities(severities, "--severities")


def evenly_spaced(samples: tuple[Sample, ...], count: int | None) -> tuple[Sample, ...]:
    """`count` samples spread evenly over the manifest order (all of them when count is None)."""
    if count is None or count >= len(samples):
        return samples
    if count < 1:
        raise InputError("--frames", "must be at least 1")
    return tuple(samples[int(i)] for i in np.unique(np.linspace(0, len(samples) - 1, count).round()))


def _job(sample: Sample, root: Path, corruption: str, severity: int, seed: int, release_compat: bool) -> SampleJob:
    suffix = CLEAN if corruption == CLEAN else f"{corruption}_s{severity}"
    return SampleJob(
        sample_id=f"{sample.sample_id}__{suffix}",
        split="test",
        sequence=sample.sequence,
        frame=sample.frame,
        image=CorruptedImage(root, sample, corruption, severity, output_seed(seed, sample.sample_id, corruption, severity), release_compat),
        labels={task: label for task, label in sample.labels.items() if not isinstance(label, MaskFile)},
        mask=DatasetMask(root, sample) if sample.mask_file is not None else None,
        extra=(("corruption", corruption), ("severity", str(severity)), ("clean_sample_id", sample.sample_id)),
    )


@BUILDERS.register("mtlendovis-gen")
def build_mtlendovis_gen(
    base: Path,
    out: Path,
    *,
    corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    release_compat: bool = False,
    include_clean: bool = False,
    frames: int | None = None,
    options: BuildOptions = BuildOptions(),
) -> Path:
    corruptions, severities = tuple(corruptions), tuple(severities)
    _check_choices(corruptions, severities)
    card = read_dataset(base)
    if "test" not in card.split_names or not card.split("test"):
        raise InputError(card.root, "the base dataset has no test samples")
    if "corruption" in card.samples[0].extra:
        raise InputError(card.root, "the base is already a robustness set; give the clean dataset")
    chosen = evenly_spaced(card.split("test"), frames)
    jobs = [_job(sample, card.root, c, s, seed, release_compat) for sample in chosen for c in corruptions for s in severities]
    if include_clean:
        jobs += [_job(sample, card.root, CLEAN, 0, seed, release_compat) for sample in chosen]
    spec = DatasetSpec(
        name=f"{card.name}-gen",
        version=VERSION,
        builder_version=BUILDER_VERSION,
        source={
            "description": f"robustness set of the {card.name} {card.meta['version']} test split: corrupted copies of its frames",
            "base": {"name": card.name, "version": card.meta["version"], "fingerprint": card.fingerprint},
            "base_test_frames": len(card.split("test")),
            "frames_used": len(chosen),
        },
        tasks=card.tasks,
        splits=("test",),
        build_parameters={
            "corruptions": list(corruptions),
            "severities": list(severities),
            "include_clean": include_clean,
            "frames": "all test frames" if frames is None else f"{len(chosen)} evenly spaced in manifest order",
            "seed": seed,
            "seed_rule": "each output's seed = output_seed(seed, clean sample_id, corruption, severity), sha256-derived",
            "geometry": "every output has its clean frame's exact size" + (
                "; release protocol: resized to 256x256, corrupted, resized back" if release_compat else
                "; spatial parameters scaled by min(height, width) / 256"
            ),
            "release_compat": release_compat,
            "corruption_parameters": describe_parameters(),
        },
        splits_from=str(card.root / "dataset.json"),
        extra_columns=EXTRA_COLUMNS,
    )
    return write_dataset(spec, jobs, [], out, options)
