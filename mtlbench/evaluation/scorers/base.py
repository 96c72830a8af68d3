"""The scoring side of a task type: its part of a submission (reader and writer: the one owner of
that file format), its section of results.json, its dummy predictions, its lines of the
`--format` text, of the report and of the plots. One scorer per task type, registered by the
type's name in SCORERS (mtlbench/evaluation/scorers/registry.py)."""

from __future__ import annotations

import abc
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rich.table import Table

from mtlbench.dataset.manifest import Sample
from mtlbench.evaluation.scorers.common import SplitContext, not_scored
from mtlbench.outputs import write_bytes
from mtlbench.progress import ProgressFn, silent
from mtlbench.tasks import Task


@dataclass(frozen=True)
class ScoringOptions:
    bootstrap: int = 1000  # resamples for the 95% intervals; 0 turns them off
    seed: int = 0
    workers: int = 1
    progress: ProgressFn = silent
    embedding_model: Path | None = None  # sentence-transformers folder for text cosines; None: all-MiniLM-L6-v2


@dataclass(frozen=True)
class Scored:
    section: dict
    frames: dict[str, np.ndarray]  # per-frame arrays in split order (e.g. "truth", "predicted", "confusions")


@dataclass(frozen=True)
class ZipEntry:
    """A zip entry a task's reader will read: where it goes (relative to the submission root) and
    the most bytes its content can need for this split."""

    relative: tuple[str, ...]
    what: str  # for the error, e.g. "35x20 mask"
    limit: int


class TaskWriter(abc.ABC):
    """Writes one task's predictions, sample by sample: a file on close, or a file per sample."""

    @abc.abstractmethod
    def add(self, sample_id: str, prediction: Any) -> None:
        """One sample's prediction, in the form the scorer's `guess` returns."""

    def close(self) -> None:
        """Write what was collected (nothing to do for writers that write as they go)."""


class CsvTaskWriter(TaskWriter):
    """A task's CSV file of a submission: the header now, a row per `add`, the file on close."""

    def __init__(self, path: Path, header: Sequence[str]):
        self.path = path
        self.buffer = io.StringIO()
        self.rows = csv.writer(self.buffer, lineterminator="\n")
        self.rows.writerow(header)

    def close(self) -> None:
        write_bytes(self.path, self.buffer.getvalue().encode("utf-8"))


class Scorer(abc.ABC):
    kind: ClassVar[str]
    headline: ClassVar[tuple[str, ...]]  # the keys that get bootstrap intervals and are never absent
    labels: ClassVar[dict[str, str]]  # report label of each metric shown in the headline table
    summary: ClassVar[str]  # its part of a submission in one line, for `--format` without a dataset
    missing_rule: ClassVar[str]  # how a sample without a prediction is scored (results.json definitions)

    # --- its part of a submission -----------------------------------------------------------
    @abc.abstractmethod
    def read(self, task: Task, path: Path, context: SplitContext) -> dict[str, Any]:
        """{sample_id: prediction} of the file or folder at `path`, every rule checked."""

    @abc.abstractmethod
    def writer(self, task: Task, root: Path, context: SplitContext) -> TaskWriter:
        """A writer of this task's part of a submission at `root`, which `read` reads back."""

    @abc.abstractmethod
    def zip_entries(self, task: Task, name: str, entries: Sequence[tuple[tuple[str, ...], bool]], context: SplitContext, where: Path) -> list[ZipEntry]:
        """Of the zip entries under `name` (paths below the submission root, and whether each is a
        folder), those to extract with their size limits; anything else this task's reader would
        refuse is refused here, before a byte is extracted."""

    # --- scoring ------------------------------------------------------------------------------
    @abc.abstractmethod
    def score(self, task: Task, predictions: dict[str, Any], context: SplitContext, options: ScoringOptions) -> Scored:
        """The task's section of results.json (samples without a prediction are scored as wrong),
        and per-frame arrays the robustness summary regroups by corruption and severity."""

    def prepare(self, task: Task, options: ScoringOptions) -> None:
        """Check and load what scoring `task` needs beyond the submission (e.g. a model), before
        any task is scored, so that a bad option fails at once; nothing by default."""

    def headline_labels(self, task: Task) -> dict[str, str]:
        """The report's label of each headline metric it shows for `task`."""
        return self.labels

    def not_scored(self, task: Task) -> dict:
        return not_scored(self.headline)

    # --- a dummy, the format text, pictures ---------------------------------------------------
    @abc.abstractmethod
    def guess(self, task: Task, sample: Sample, kind: str, context: SplitContext, rng: np.random.Generator) -> Any:
        """A dummy prediction: `kind` constant (the train split's most frequent answer) or random."""

    @abc.abstractmethod
    def describe(self, task: Task, context: SplitContext | None) -> list[str]:
        """Lines of `mtlbench evaluate --format` for this task (with the dataset's names when given)."""

    def plots(self, task: Task, results: dict, folder: Path) -> list[Path]:
        """PNG pictures of the task's section (called for scored tasks only); none by default."""
        return []

    def tables(self, task: Task, results: dict) -> list[Table]:
        """Tables of the report beyond the headline metrics; none by default."""
        return []
