"""COCO segmentation annotations, one <split>.json per split with samples.

Images are not copied: each image's `file_name` is its path relative to the dataset folder
(e.g. "images/seq05_frame002.png"), so COCO tools take the dataset folder as image root.
Category ids are class id + 1 because COCO reserves 0; background is a category like any other.
Every class present in a mask gives one annotation, a compressed RLE of that class's pixels.
Ignore pixels are in no annotation: a decoder recovers them as the pixels left uncovered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pycocotools import mask as coco_mask

from mtlbench.dataset.files import read_mask
from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.exports.registry import EXPORTERS, Exporter
from mtlbench.jsonio import write_json
from mtlbench.progress import Advance, ProgressFn
from mtlbench.tasks import ClassLabel, Task
from mtlbench.tasks.segmentation import SegmentationTask


def unsupported(tasks: Sequence[Task]) -> str | None:
    if not any(isinstance(task, SegmentationTask) for task in tasks):
        return "COCO annotations need a segmentation task"
    return None


def export(card: DatasetCard, out: Path, progress: ProgressFn) -> None:
    advance = progress("Exporting coco", len(card.samples))
    for split in card.split_names:
        samples = card.split(split)
        if samples:
            # Compact: RLE annotations make indented files several times larger.
            write_json(out / f"{split}.json", _document(card, split, samples, advance), compact=True)


def _document(card: DatasetCard, split: str, samples: tuple[Sample, ...], advance: Advance) -> dict:
    images = []
    annotations = []
    for image_id, sample in enumerate(samples, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": sample.image,
                "width": sample.width,
                "height": sample.height,
                "sample_id": sample.sample_id,
                "sequence": sample.sequence,
                "frame": sample.frame,
                **_class_labels(sample),
            }
        )
        mask = read_mask(card.root, sample)
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[: len(card.classes)])
        for class_id in present:
            annotations.append(_annotation(len(annotations) + 1, image_id, int(class_id), mask == class_id))
        advance()
    return {
        "info": {
            "description": f"{card.name} {split} split in COCO format, written by mtlbench",
            "dataset": card.name,
            "version": card.meta["version"],
            "fingerprint": card.fingerprint,
            "split": split,
        },
        "tasks": [task.to_json() for task in card.tasks],
        "categories": [
            {"id": c.id + 1, "name": c.name, "color": list(c.color), "class_id": c.id} for c in card.classes
        ],
        "images": images,
        "annotations": annotations,
    }


def _annotation(annotation_id: int, image_id: int, class_id: int, pixels: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(pixels, dtype=np.uint8))
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": class_id + 1,
        "segmentation": {"size": [int(n) for n in rle["size"]], "counts": rle["counts"].decode("ascii")},
        "area": int(coco_mask.area(rle)),
        "bbox": [float(v) for v in coco_mask.toBbox(rle)],
        "iscrowd": 0,
    }


def _class_labels(sample: Sample) -> dict:
    """Each classification label as in samples.csv: `<task>` its name, `<task>_id` its id."""
    cells = {}
    for task, label in sample.labels.items():
        if isinstance(label, ClassLabel):
            cells.update({task: label.name, f"{task}_id": label.id})
    return cells


EXPORTERS.add("coco", Exporter(export, unsupported))
