"""What every builder shares: how the dataset folder is written, and the step that writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mtlbench.dataset.writer import DatasetSpec, SampleJob, Skip, build_dataset
from mtlbench.errors import InputError
from mtlbench.exports import check_exportable, checked_export_names, run_exports
from mtlbench.progress import ProgressFn, silent
from mtlbench.tasks import Task
from mtlbench.tasks.classification import ACTIVITY_TASK, ClassificationTask
from mtlbench.tasks.segmentation import SegmentationTask
from mtlbench.taxonomies import SegClass

# The EndoARSS track's tasks keep the submission file their predictions always had.
ACTIVITY_SUBMISSION_FILE = "activities.csv"


@dataclass(frozen=True)
class BuildOptions:
    """Checked when made, so that a bad option stops a build before any input is read."""

    overwrite: bool = False  # replace an existing non-empty output folder
    workers: int = 1  # processes decoding and encoding frames
    exports: tuple[str, ...] = ()  # exports written into the folder before it is committed
    allow_empty_splits: bool = False  # build even if a declared split gets no samples
    progress: ProgressFn = field(default=silent, compare=False)

    def __post_init__(self):
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InputError("--workers", f"must be an integer of at least 1, got {self.workers!r}")
        object.__setattr__(self, "exports", checked_export_names(tuple(self.exports)))


def endoarss_tasks(activities: Sequence[str], classes: Sequence[SegClass]) -> tuple[Task, ...]:
    """The two tasks of the EndoARSS datasets (MTLEndovis, MTLESD): activity and segmentation."""
    return ClassificationTask(ACTIVITY_TASK, activities, ACTIVITY_SUBMISSION_FILE), SegmentationTask("segmentation", classes)


def write_dataset(spec: DatasetSpec, jobs: Sequence[SampleJob], skips: Sequence[Skip], out: Path, options: BuildOptions) -> Path:
    """Write the dataset folder (and its exports) for the jobs a builder found."""
    check_exportable(options.exports, spec.tasks, spec.name)

    def finalise(staging: Path) -> None:
        run_exports(staging, options.exports, options.progress)

    return build_dataset(
        spec,
        jobs,
        skips,
        out,
        overwrite=options.overwrite,
        workers=options.workers,
        allow_empty_splits=options.allow_empty_splits,
        finalise=finalise if options.exports else None,
        progress=options.progress,
    )
