"""Writing a split's predictions as an mtlbench submission folder, through the one submission writer."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from baselines.inference import Prediction
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.evaluation.submission_writer import SubmissionWriter


def write_submission(predictions: Iterable[Prediction], card: DatasetCard, split: str, out: Path, meta: dict) -> Path:
    """activities.csv with probabilities, masks/<id>.png, submission.json; written atomically."""
    with SubmissionWriter(card, split, out, meta, overwrite=True) as writer:
        for prediction in predictions:
            writer.add(prediction.sample.sample_id, scores=prediction.probabilities, mask=prediction.mask)
    return Path(out)
