"""classification: one class per frame (surgical activity, phase, step).

Declared as {"name", "type": "classification", "classes": [names in id order], "submission":
"<file>.csv"}; samples.csv holds the class name in column `<name>` and its id in `<name>_id`
(MTLEndovis's "activity" / "activity_id"). The vocabulary is the whole label set, also classes
that never occur. `submission` names the predictions file of a submission (default `<name>.csv`;
the activity task of MTLEndovis and MTLESD keeps the historical "activities.csv").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlbench.errors import InputError
from mtlbench.tasks.base import ClassLabel, Task, check_names, json_list
from mtlbench.tasks.registry import TASK_TYPES


# The EndoARSS track's per-frame activity: a classification task of this name is what the
# segmentation scorer reports mIoU per class of, what robustness sets report, and what the
# EndoARSS export sorts frames by.
ACTIVITY_TASK = "activity"


@TASK_TYPES.register("classification")
class ClassificationTask(Task):
    kind = "classification"
    statistics_keys = ("counts",)

    def __init__(self, name: str, classes: Sequence[str], submission: str | None = None, where: str | Path = "task"):
        super().__init__(name, where)
        self.classes = check_names(classes, f"classes of task {name!r}", where)
        self.submission = submission or f"{name}.csv"
        if not self.submission.endswith(".csv") or "/" in self.submission:
            raise InputError(where, f"task {name!r}: submission must be a file name ending in .csv, got {self.submission!r}")

    @classmethod
    def from_json(cls, data: dict, where: str | Path) -> ClassificationTask:
        return cls(data.get("name"), json_list(data, "classes", where), data.get("submission"), where)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "classes": list(self.classes), "submission": self.submission}

    @property
    def submission_name(self) -> str:
        return self.submission

    def columns(self) -> tuple[str, ...]:
        return (self.name, f"{self.name}_id")

    def parse(self, cells: Sequence[str], where: str) -> ClassLabel:
        name, identifier = cells
        try:
            class_id = int(identifier)
        except ValueError:
            raise InputError(where, f"{self.name}_id {identifier!r} is not an integer") from None
        if not 0 <= class_id < len(self.classes) or self.classes[class_id] != name:
            raise InputError(where, f"{self.name} {name!r} / id {identifier} not in the vocabulary of task {self.name!r}")
        return ClassLabel(class_id, name)

    def cells(self, label: ClassLabel) -> list[str]:
        return [label.name, str(label.id)]

    def check(self, label: Any, where: str) -> ClassLabel:
        """A class id, or a ClassLabel of this vocabulary (a label copied from another dataset)."""
        if isinstance(label, ClassLabel):
            return self.parse(self.cells(label), where)
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(self.classes):
            raise InputError(where, f"class id {label!r} of task {self.name!r} is not in 0..{len(self.classes) - 1}")
        return ClassLabel(label, self.classes[label])

    def split_statistics(self, labels: Sequence[ClassLabel], pixel_counts: np.ndarray) -> dict:
        counts = np.bincount([label.id for label in labels], minlength=len(self.classes))
        return {"counts": {name: int(count) for name, count in zip(self.classes, counts)}}

    def item(self, label: ClassLabel) -> dict[str, Any]:
        return {self.name: label.id}

    def summary(self, statistics: dict[str, dict]) -> tuple[str, list[str], list[list[str]]]:
        rows = [
            [str(class_id), name, *(str(split["counts"].get(name, 0)) for split in statistics.values())]
            for class_id, name in enumerate(self.classes)
        ]
        return f"Task {self.name}: classification (frames per split)", ["id", self.name], rows
