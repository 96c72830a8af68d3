"""The folder layout of the EndoARSS release, so the authors' training code runs on our data.

<out>/<split>/<activity_id + 1>/{image,mask}/<sample_id>.png, with folders only for splits and
activities that have samples (the release enumerates the folders it finds). Images are copies
of the dataset's files. The release reads a mask as 8-bit grey and subtracts 1 from every value
above 0, so class k is written as k + 1 and comes back as k. No raw value comes back as ignore:
ignore pixels are written as 0, which the release reads as background, the only value its loss
accepts. mtlbench-export.json marks the folder as ours (mtlbench/endoarss_marker.py); an importer
that finds it reads raw 0 as ignore again, which makes a re-import exact.

The release's loader asserts that no mask value exceeds 9 after the subtraction, and a frame that
fails gives None, which stops its DataLoader: a dataset with more than 10 classes is refused, as an
export the release cannot read. (MTLEndovis fits with `--classes release`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mtlbench import pngio
from mtlbench.dataset.files import read_dataset_file, read_mask
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.endoarss_marker import MARKER_IGNORE_RAW_VALUE, write_marker
from mtlbench.exports.registry import EXPORTERS, Exporter
from mtlbench.outputs import write_bytes
from mtlbench.progress import ProgressFn
from mtlbench.tasks import Task
from mtlbench.tasks.classification import ACTIVITY_TASK
from mtlbench.tasks.segmentation import SegmentationTask
from mtlbench.taxonomies import IGNORE_INDEX

# The release's loader asserts max(mask) <= 9 after subtracting 1 from non-zero values.
RELEASE_MAX_CLASSES = 10


def raw_values() -> np.ndarray:
    """Lookup table from our class ids (and IGNORE_INDEX) to the release's raw mask values."""
    table = np.arange(1, 257)
    table[IGNORE_INDEX] = MARKER_IGNORE_RAW_VALUE
    return table.astype(np.uint8)


def unsupported(tasks: Sequence[Task]) -> str | None:
    """The release reads a classification task named activity and a segmentation task of at most
    RELEASE_MAX_CLASSES classes; other tasks of the dataset are not part of its layout."""
    segmentation = next((task for task in tasks if isinstance(task, SegmentationTask)), None)
    if not any(task.name == ACTIVITY_TASK and task.kind == "classification" for task in tasks) or segmentation is None:
        return "the EndoARSS layout needs an 'activity' classification task and a segmentation task"
    if len(segmentation.classes) > RELEASE_MAX_CLASSES:
        return (
            f"the EndoARSS release's loader accepts at most {RELEASE_MAX_CLASSES} segmentation classes "
            f"(it asserts mask values <= {RELEASE_MAX_CLASSES - 1} after subtracting 1); this dataset has "
            f"{len(segmentation.classes)} (MTLEndovis: build it with --classes release)"
        )
    return None


def export(card: DatasetCard, out: Path, progress: ProgressFn) -> None:
    advance = progress("Exporting endoarss", len(card.samples))
    to_raw = raw_values()
    for sample in card.samples:
        folder = out / sample.split / str(sample.activity_id + 1)
        write_bytes(folder / "image" / f"{sample.sample_id}.png", read_dataset_file(card.root, sample.image, sample.image_sha256))
        pngio.write_png(folder / "mask" / f"{sample.sample_id}.png", to_raw[read_mask(card.root, sample)])
        advance()
    write_marker(card, out)


EXPORTERS.add("endoarss", Exporter(export, unsupported))
