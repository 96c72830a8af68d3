"""What every task type has: a declaration in dataset.json, columns in samples.csv, labels checked
on the way in, statistics per split, and the entries a loader item carries.

A dataset declares its tasks, each an instance of a registered task type (classification,
multilabel, segmentation, text). A label is an immutable value of its task type (ClassLabel,
LabelSet, MaskFile, TextLabel); a sample holds one label per task. Everything downstream (the
dataset card, the loader, the submission format, the evaluator, the report) is driven by these
declarations; the scoring side of each type lives in mtlbench/evaluation/scorers/.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mtlbench.errors import InputError

TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Names a task cannot take: the core columns of samples.csv, the other keys of a loader item and
# of a COCO export's images, and the top-level keys of results.json, which a task's entries there
# would collide with.
RESERVED_NAMES = frozenset(
    {"sample_id", "split", "sequence", "frame", "image", "width", "height", "image_sha256", "mask", "mask_sha256"}
    | {"id", "file_name"}
    | {"evaluator", "dataset", "submission", "counts", "bootstrap", "robustness", "multitask", "definitions"}
)  # the last set: results_file.NOT_TASK_SECTIONS
# Separates the names of a label set in samples.csv; refused inside any vocabulary name.
LABEL_SEPARATOR = "|"
# Starts the submission column of a class's or label's score (score_<name>).
SCORE_PREFIX = "score_"


class ClassLabel(NamedTuple):
    id: int
    name: str


class MaskFile(NamedTuple):
    """A segmentation label: the mask file of the sample, relative to the dataset folder."""

    path: str
    sha256: str


class TextLabel(NamedTuple):
    text: str
    context: tuple[tuple[str, str], ...]  # (field, value) in the order the task declares its fields

    def field(self, name: str) -> str:
        return dict(self.context)[name]


LabelSet = tuple[int, ...]  # a multilabel label: sorted ids of the labels present


def check_names(names: Sequence[str], what: str, where: str | Path) -> tuple[str, ...]:
    """A vocabulary: non-empty, distinct, non-blank names without the label separator."""
    names = tuple(names)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise InputError(where, f"{what} must be a non-empty list of non-empty names")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(where, f"{what} names occur twice: {', '.join(duplicates)}")
    separated = [name for name in names if LABEL_SEPARATOR in name or name != name.strip()]
    if separated:
        raise InputError(where, f"{what} names may not contain {LABEL_SEPARATOR!r} or surrounding spaces: {separated[0]!r}")
    return names


def json_list(data: dict, key: str, where: str | Path) -> list:
    """A list-valued key of a task declaration."""
    value = data.get(key)
    if not isinstance(value, list):
        raise InputError(where, f"task {data.get('name')!r}: {key!r} must be a list")
    return value


class Task(abc.ABC):
    """One declared task of a dataset; subclasses are registered in TASK_TYPES under `kind`."""

    kind: ClassVar[str]
    statistics_keys: ClassVar[tuple[str, ...]]  # what split_statistics returns (checked when a dataset is read)

    def __init__(self, name: str, where: str | Path = "task"):
        if not isinstance(name, str) or not TASK_NAME.match(name):
            raise InputError(where, f"task name {name!r} must be lower-case letters, digits and '_', starting with a letter")
        if name in RESERVED_NAMES:
            raise InputError(where, f"task name {name!r} is reserved (a column, loader or results.json key of its own)")
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_json() == self.to_json()

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    @classmethod
    @abc.abstractmethod
    def from_json(cls, data: dict, where: str | Path) -> Task:
        """The task declared by `data` (an entry of dataset.json's "tasks"), checked."""

    @abc.abstractmethod
    def to_json(self) -> dict:
        """The entry of dataset.json's "tasks" that declares this task."""

    @property
    @abc.abstractmethod
    def submission_name(self) -> str:
        """The file (or folder) at a submission's root that holds this task's predictions."""

    @abc.abstractmethod
    def columns(self) -> tuple[str, ...]:
        """The samples.csv columns that hold this task's label."""

    @abc.abstractmethod
    def parse(self, cells: Sequence[str], where: str) -> Any:
        """The label in the cells of `columns()` of one samples.csv row; refused with `where` in the error."""

    @abc.abstractmethod
    def cells(self, label: Any) -> list[str]:
        """The samples.csv cells of a label (the inverse of `parse`)."""

    @abc.abstractmethod
    def check(self, label: Any, where: str) -> Any:
        """A label as a builder gives it, checked and in its stored form (what `parse` returns)."""

    @abc.abstractmethod
    def split_statistics(self, labels: Sequence[Any], pixel_counts: np.ndarray) -> dict:
        """This task's statistics over one split (dataset.json); `pixel_counts` sums the split's
        masks per value (segmentation only)."""

    @abc.abstractmethod
    def item(self, label: Any) -> dict[str, Any]:
        """The entries of a loader item for this task (image and mask tensors are the loader's)."""

    @abc.abstractmethod
    def summary(self, statistics: dict[str, dict]) -> tuple[str, list[str], list[list[str]]]:
        """(title, row header columns, rows) of the dataset card's table for this task, with one
        value column per split; `statistics` maps each split to this task's split_statistics."""
