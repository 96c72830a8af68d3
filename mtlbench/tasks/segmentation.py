"""segmentation: a class per pixel, stored as a mask PNG per frame.

Declared as {"name", "type": "segmentation", "classes": [{"id", "name", "color"}]}; a dataset
has at most one segmentation task. Masks are single-channel 8-bit PNGs in masks/<sample_id>.png
holding class ids 0..K-1 and IGNORE_INDEX (255) for pixels whose label is unknown; samples.csv
holds their path and sha256 in `mask` and `mask_sha256`. A mask is decoded from its source by
the dataset writer, which also counts its pixels for the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mtlbench.errors import InputError
from mtlbench.tasks.base import MaskFile, Task, check_names, json_list
from mtlbench.tasks.registry import TASK_TYPES
from mtlbench.taxonomies import IGNORE_INDEX, SegClass

MASK_COLUMNS = ("mask", "mask_sha256")
MASKS_FOLDER = "masks"


def parse_classes(entries: list, where: str | Path) -> tuple[SegClass, ...]:
    """Classes as written by `classes_json`: ids 0..K-1 in order, names, colours [r, g, b]."""
    if not entries or not all(isinstance(item, dict) for item in entries):
        raise InputError(where, "classes must be a non-empty list of objects")
    if [item.get("id") for item in entries] != list(range(len(entries))):
        raise InputError(where, "classes must be a non-empty list with ids 0..n-1 in order")
    check_names([item.get("name") for item in entries], "classes", where)
    if len(entries) > IGNORE_INDEX:
        raise InputError(where, f"at most {IGNORE_INDEX} classes fit in an 8-bit mask")
    for item in entries:
        color = item.get("color")
        if not (isinstance(color, list) and len(color) == 3 and all(type(c) is int and 0 <= c <= 255 for c in color)):
            raise InputError(where, f"class {item['name']!r} needs a color [r, g, b]")
    return tuple(SegClass(item["id"], item["name"], tuple(item["color"])) for item in entries)


def classes_json(classes: Sequence[SegClass]) -> list[dict]:
    return [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes]


@TASK_TYPES.register("segmentation")
class SegmentationTask(Task):
    kind = "segmentation"
    statistics_keys = ("pixel_counts", "ignored_pixels")

    def __init__(self, name: str, classes: Sequence[SegClass], where: str | Path = "task"):
        super().__init__(name, where)
        self.classes = tuple(classes)
        parse_classes(classes_json(self.classes), where)

    @classmethod
    def from_json(cls, data: dict, where: str | Path) -> SegmentationTask:
        return cls(data.get("name"), parse_classes(json_list(data, "classes", where), where), where)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "classes": classes_json(self.classes)}

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(cls.name for cls in self.classes)

    @property
    def submission_name(self) -> str:
        return MASKS_FOLDER

    def columns(self) -> tuple[str, ...]:
        return MASK_COLUMNS

    def parse(self, cells: Sequence[str], where: str) -> MaskFile:
        path, sha256 = cells
        relative = PurePosixPath(path)
        if not path or relative.is_absolute() or ".." in relative.parts:
            raise InputError(where, f"mask path {path!r} must be relative and inside the folder")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InputError(where, "mask_sha256 is not a sha256 hex digest")
        return MaskFile(path, sha256)

    def cells(self, label: MaskFile) -> list[str]:
        return [label.path, label.sha256]

    def check(self, label: Any, where: str) -> MaskFile:
        if not isinstance(label, MaskFile):
            raise InputError(where, f"task {self.name!r} takes the mask the writer decoded, not {type(label).__name__}")
        return label

    def split_statistics(self, labels: Sequence[MaskFile], pixel_counts: np.ndarray) -> dict:
        return {
            "pixel_counts": {cls.name: int(pixel_counts[cls.id]) for cls in self.classes},
            "ignored_pixels": int(pixel_counts[IGNORE_INDEX]),
        }

    def item(self, label: MaskFile) -> dict[str, Any]:
        return {}  # the loader reads and checks the mask itself

    def summary(self, statistics: dict[str, dict]) -> tuple[str, list[str], list[list[str]]]:
        rows = [
            [str(cls.id), cls.name, f"#{cls.color[0]:02x}{cls.color[1]:02x}{cls.color[2]:02x}",
             *(f"{split['pixel_counts'].get(cls.name, 0):,}" for split in statistics.values())]
            for cls in self.classes
        ]
        rows.append([str(IGNORE_INDEX), "(ignored)", "", *(f"{split['ignored_pixels']:,}" for split in statistics.values())])
        return f"Task {self.name}: segmentation (pixels per split)", ["id", "class", "colour"], rows
