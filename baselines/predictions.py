"""Writing a split's predictions as an mtlbench submission folder (docs/format-submission.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable

from baselines.inference import Prediction
from mtlbench.atomic import atomic_folder
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.evaluation.submission import score_column
from mtlbench.pngio import write_png


def write_submission(predictions: Iterable[Prediction], card: DatasetCard, out: Path, meta: dict) -> Path:
    """activities.csv with probabilities, masks/<id>.png, submission.json; written atomically."""
    header = ["sample_id", "activity"] + [score_column(name) for name in card.activities]
    rows = []
    with atomic_folder(out, overwrite=True) as staging:
        for prediction in predictions:
            if prediction.mask is not None:
                write_png(staging / "masks" / f"{prediction.sample.sample_id}.png", prediction.mask)
            if prediction.probabilities is not None:
                probabilities = prediction.probabilities / prediction.probabilities.sum()
                activity = card.activities[int(probabilities.argmax())]
                rows.append([prediction.sample.sample_id, activity] + [f"{p:.8f}" for p in probabilities])
        if rows:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows([header] + rows)
            (staging / "activities.csv").write_text(buffer.getvalue(), encoding="utf-8")
        (staging / "submission.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
