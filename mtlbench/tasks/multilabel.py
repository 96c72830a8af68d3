"""multilabel: a set of labels per frame (anatomical landmarks, instruments present).

Declared as {"name", "type": "multilabel", "labels": [names in id order]}; samples.csv holds the
present labels' names in vocabulary order, joined by "|", in column `<name>` (an empty cell is
the empty set: nothing of the vocabulary visible, which is a label like any other).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlbench.errors import InputError
from mtlbench.tasks.base import LABEL_SEPARATOR, SCORE_PREFIX, LabelSet, Task, check_names, json_list
from mtlbench.tasks.registry import TASK_TYPES


@TASK_TYPES.register("multilabel")
class MultilabelTask(Task):
    kind = "multilabel"
    statistics_keys = ("counts", "empty")

    def __init__(self, name: str, labels: Sequence[str], where: str | Path = "task"):
        super().__init__(name, where)
        self.labels = check_names(labels, f"labels of task {name!r}", where)
        # a submission has a column per label next to sample_id and the score_<label> columns
        clashing = [label for label in self.labels if label == "sample_id" or label.startswith(SCORE_PREFIX)]
        if clashing:
            raise InputError(where, f"labels of task {name!r} may not be 'sample_id' or start with {SCORE_PREFIX!r}: {clashing[0]!r}")
        self._ids = {label: index for index, label in enumerate(self.labels)}

    @classmethod
    def from_json(cls, data: dict, where: str | Path) -> MultilabelTask:
        return cls(data.get("name"), json_list(data, "labels", where), where)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "labels": list(self.labels)}

    @property
    def submission_name(self) -> str:
        return f"{self.name}.csv"

    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    def parse(self, cells: Sequence[str], where: str) -> LabelSet:
        (cell,) = cells
        names = cell.split(LABEL_SEPARATOR) if cell else []
        unknown = [name for name in names if name not in self._ids]
        if unknown:
            raise InputError(where, f"{self.name}: {unknown[0]!r} is not a label of task {self.name!r}")
        ids = [self._ids[name] for name in names]
        if ids != sorted(set(ids)):
            raise InputError(where, f"{self.name}: labels must be distinct and in vocabulary order, got {cell!r}")
        return tuple(ids)

    def cells(self, label: LabelSet) -> list[str]:
        return [LABEL_SEPARATOR.join(self.labels[index] for index in label)]

    def check(self, label: Any, where: str) -> LabelSet:
        if isinstance(label, (str, bytes)) or not isinstance(label, Iterable):
            raise InputError(where, f"task {self.name!r} takes a set of label ids, got {label!r}")
        ids = sorted(set(label))
        if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.labels) for i in ids):
            raise InputError(where, f"label ids of task {self.name!r} must be in 0..{len(self.labels) - 1}, got {ids}")
        return tuple(ids)

    def indicator(self, labels: Sequence[LabelSet]) -> np.ndarray:
        """(N, L) 0/1 matrix of label sets."""
        matrix = np.zeros((len(labels), len(self.labels)), dtype=np.int8)
        for row, label in enumerate(labels):
            matrix[row, list(label)] = 1
        return matrix

    def split_statistics(self, labels: Sequence[LabelSet], pixel_counts: np.ndarray) -> dict:
        counts = self.indicator(labels).sum(axis=0)
        return {
            "counts": {name: int(count) for name, count in zip(self.labels, counts)},
            "empty": sum(1 for label in labels if not label),
        }

    def item(self, label: LabelSet) -> dict[str, Any]:
        targets = np.zeros(len(self.labels), dtype=np.float32)  # a torch DataLoader batches it into a tensor
        targets[list(label)] = 1.0
        return {self.name: targets}

    def summary(self, statistics: dict[str, dict]) -> tuple[str, list[str], list[list[str]]]:
        rows = [
            [str(label_id), name, *(str(split["counts"].get(name, 0)) for split in statistics.values())]
            for label_id, name in enumerate(self.labels)
        ]
        rows.append(["", "(none)", *(str(split["empty"]) for split in statistics.values())])
        return f"Task {self.name}: multilabel (frames with each label per split)", ["id", "label"], rows
