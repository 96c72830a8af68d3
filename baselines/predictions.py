"""Writing a split's predictions as an mtlbench submission folder, through the one submission writer."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from baselines.inference import Prediction
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.evaluation.submission_writer import SubmissionWriter


def write_submission(
    predictions: Iterable[Prediction], card: DatasetCard, split: str, tasks: Sequence[str], out: Path, meta: dict
) -> Path:
    """The predictions of `tasks` (activity probabilities, segmentation masks); written atomically."""
    with SubmissionWriter(card, split, out, meta, tasks=tasks, overwrite=True) as writer:
        for prediction in predictions:
            values = {"activity": prediction.probabilities, "segmentation": prediction.mask}
            writer.add(prediction.sample.sample_id, {task: values[task] for task in tasks})
    return Path(out)
