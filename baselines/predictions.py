"""Writing a split's predictions as an mtlbench submission folder, through the one submission writer."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from baselines.family import Prediction
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.evaluation.submission_writer import SubmissionWriter


def write_submission(
    predictions: Iterable[Prediction], card: DatasetCard, split: str, tasks: Sequence[str], out: Path, meta: dict
) -> Path:
    """The predictions of `tasks` (each task's values in its submission writer's form); written atomically."""
    with SubmissionWriter(card, split, out, meta, tasks=tasks, overwrite=True) as writer:
        for prediction in predictions:
            writer.add(prediction.sample.sample_id, {task: prediction.values[task] for task in tasks})
    return Path(out)
