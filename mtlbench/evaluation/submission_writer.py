"""Writing a submission (docs/format-submission.md): the one writer beside the reader
(mtlbench.evaluation.submission), used by dummy submissions and by the reference runners.

Each task's part is written by its task type's scorer, which also reads it back. A submission
is written atomically: files go to a temporary folder that becomes the submission only when the
`with` block ends without an error; submission.json names the dataset fingerprint and split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.evaluation.scorers import scorer_of
from mtlbench.evaluation.scorers.common import SplitContext
from mtlbench.evaluation.submission import META_FILE
from mtlbench.jsonio import write_json
from mtlbench.outputs import atomic_folder


class SubmissionWriter:
    def __init__(
        self,
        card: DatasetCard,
        split: str,
        out: Path,
        meta: dict,
        *,
        tasks: Sequence[str] | None = None,
        overwrite: bool = False,
        option: str = "--out",
    ):
        """`tasks`: the names of the tasks to write (default: every task of the dataset)."""
        self.context = SplitContext(card, split, card.split(split))
        self.split_ids = {sample.sample_id for sample in self.context.samples}
        self.tasks = [card.task(name) for name in tasks] if tasks is not None else list(card.tasks)
        if not self.tasks:
            raise InputError("tasks", f"choose one or more of {', '.join(task.name for task in card.tasks)}")
        self.out = Path(out)
        self.meta = {**meta, "dataset_fingerprint": card.fingerprint, "split": split}
        self.overwrite = overwrite
        self.option = option
        self._folder = None
        self._writers = {}

    def __enter__(self) -> SubmissionWriter:
        self._folder = atomic_folder(self.out, overwrite=self.overwrite, option=self.option)
        staging = self._folder.__enter__()
        self._writers = {task.name: scorer_of(task).writer(task, staging, self.context) for task in self.tasks}
        self._staging = staging
        return self

    def add(self, sample_id: str, predictions: dict[str, Any]) -> None:
        """One sample's predictions, task name -> the value its scorer takes (see the scorers' `guess`)."""
        if sample_id not in self.split_ids:
            raise ValueError(f"{sample_id!r} is not a sample of split {self.context.split!r}")
        if set(predictions) != set(self._writers):
            raise ValueError(f"{sample_id}: predictions for {sorted(predictions)}, expected {sorted(self._writers)}")
        for task, prediction in predictions.items():
            self._writers[task].add(sample_id, prediction)

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            for writer in self._writers.values():
                writer.close()
            write_json(self._staging / META_FILE, self.meta)
        return bool(self._folder.__exit__(kind, error, traceback))
