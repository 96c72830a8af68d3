"""Dummy submissions: a floor every method must beat, and a template of the format.

`constant` predicts, for each task, the train split's most frequent answer (class, label set,
text, mask class); `random` draws each task's predictions from its own seeded generator (one
stream per task, in the dataset's task order), so a task's predictions do not depend on which
other tasks are written. Every task type's guess comes from its scorer, and everything is written
by the one submission writer, so it follows docs/format-submission.md exactly, and the same
inputs always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.evaluation.scorers import scorer_of
from mtlbench.evaluation.scorers.common import SplitContext
from mtlbench.evaluation.submission_writer import SubmissionWriter

DUMMY_KINDS = ("constant", "random")


def write_dummy_submission(
    card: DatasetCard,
    split: str,
    out: Path,
    *,
    kind: str = "constant",
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a valid `kind` submission for `split` of `card` into the folder `out`; returns `out`.
    `tasks`: the names of the tasks to predict (default: all of the dataset's)."""
    if kind not in DUMMY_KINDS:
        raise InputError("--kind", f"{kind!r} is not a dummy kind (choose from: {', '.join(DUMMY_KINDS)})")
    names = [task.name for task in card.tasks]
    chosen = names if tasks is None else list(tasks)
    unknown = [task for task in chosen if task not in names]
    if unknown or not chosen:
        raise InputError("tasks", f"choose one or more of {', '.join(names)} (got: {', '.join(chosen) or 'none'})")
    samples = card.split(split)
    if not samples:
        raise InputError(card.root / "dataset.json", f"split {split!r} has no samples to predict")
    context = SplitContext(card, split, samples)
    streams = dict(zip(names, (np.random.default_rng(stream) for stream in np.random.SeedSequence(seed).spawn(len(names)))))
    meta = {
        "method": f"dummy-{kind}",
        "seed": seed if kind == "random" else None,  # null where nothing is random, as in dataset.json
        "parameters": {"kind": kind},
        "parameter_count": 0,
    }
    written = [card.task(name) for name in names if name in chosen]
    scorers = {task.name: scorer_of(task) for task in written}
    with SubmissionWriter(card, split, Path(out), meta, tasks=[task.name for task in written], overwrite=overwrite, option="--write-dummy") as writer:
        for sample in samples:
            writer.add(
                sample.sample_id,
                {task.name: scorers[task.name].guess(task, sample, kind, context, streams[task.name]) for task in written},
            )
    return Path(out)
