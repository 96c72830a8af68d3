"""Scoring a multi-label task: `<task>.csv` predictions, micro/macro/samples F1, subset accuracy,
Hamming loss and mAP (docs/metrics.md).

The predictions file is UTF-8 CSV with a header: `sample_id`, one column per label named exactly
as the label, holding 1 (present) or 0 (absent), and optionally one `score_<label>` column per
label, all or none: confidences in [0, 1] that only the mean average precision uses (thresholds
are the submitter's business, so a decision need not agree with its score). A sample without a
prediction counts as every label wrong (the complement of its true set, scores included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.plots import bars
from mtlbench.evaluation.scorers.base import CsvTaskWriter, Scored, Scorer, ScoringOptions, TaskWriter, ZipEntry
from mtlbench.evaluation.scorers.common import (
    SplitContext,
    check_score_header,
    csv_rows,
    format_line,
    per_sequence,
    probability,
    score_column,
    with_intervals,
)
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.evaluation.tables import per_class_table
from mtlbench.figures import results_label
from mtlbench.metrics import multilabel as metrics
from mtlbench.tasks.multilabel import MultilabelTask

DECISION_THRESHOLD = 0.5  # what the writer turns a confidence into a decision with
HEADER_BYTES = 2**16
ROW_BYTES = 256
LABEL_BYTES = 32  # a decision and a score per label
_DECISIONS = {"0": False, "1": True}


@dataclass(frozen=True)
class LabelPrediction:
    present: np.ndarray  # (L,) bool
    scores: np.ndarray | None  # (L,) float64 confidences, when the file has score columns



class _Writer(CsvTaskWriter):
    """Predictions are (L,) confidences in [0, 1]: present where >= DECISION_THRESHOLD."""

    def __init__(self, task: MultilabelTask, path: Path):
        super().__init__(path, ["sample_id", *task.labels, *(score_column(label) for label in task.labels)])
        self.task = task

    def add(self, sample_id: str, prediction: Any) -> None:
        scores = np.asarray(prediction, dtype=np.float64)
        if scores.shape != (len(self.task.labels),) or not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
            raise ValueError(f"{sample_id}: {self.task.name} needs {len(self.task.labels)} confidences in [0, 1]")
        decisions = (scores >= DECISION_THRESHOLD).astype(int)
        self.rows.writerow([sample_id, *map(str, decisions), *(repr(float(value)) for value in scores)])


@SCORERS.register("multilabel")
class MultilabelScorer(Scorer):
    kind = "multilabel"
    headline = metrics.HEADLINE_KEYS
    labels = {
        "micro_f1": "micro-F1",
        "macro_f1": "macro-F1 (labels present in truth or prediction)",
        "samples_f1": "samples-F1 (per frame, averaged)",
        "subset_accuracy": "subset accuracy (exact label set)",
        "hamming_loss": "Hamming loss (lower is better)",
    }
    summary = "<task>.csv: sample_id, a 0/1 column per label[, score_<label>...]"
    missing_rule = "a missing label set counts as every label wrong"

    def read(self, task: MultilabelTask, path: Path, context: SplitContext) -> dict[str, LabelPrediction]:
        scores = [score_column(label) for label in task.labels]

        def check_header(header: list[str]) -> None:
            check_score_header(path, header, ("sample_id", *task.labels), task.labels, "label", f"sample_id, one per label of {task.name}")

        predictions = {}
        for line, values in csv_rows(path, context, check_header):
            present = np.array([self._decision(path, line, label, values[label]) for label in task.labels], dtype=bool)
            confidences = (
                np.array([probability(path, line, column, values[column]) for column in scores], dtype=np.float64)
                if scores[0] in values
                else None
            )
            predictions[values["sample_id"]] = LabelPrediction(present, confidences)
        return predictions

    @staticmethod
    def _decision(path: Path, line: int, label: str, cell: str) -> bool:
        if cell not in _DECISIONS:
            raise InputError(path, f"line {line}: label {label!r} is {cell!r}, not 0 or 1")
        return _DECISIONS[cell]

    def zip_entries(self, task, name, entries, context, where) -> list[ZipEntry]:
        limit = HEADER_BYTES + len(context.samples) * (ROW_BYTES + LABEL_BYTES * len(task.labels))
        return [ZipEntry(relative, f"{name} file", limit) for relative, _ in entries]

    def writer(self, task: MultilabelTask, root: Path, context: SplitContext) -> TaskWriter:
        return _Writer(task, root / task.submission_name)

    def score(self, task: MultilabelTask, predictions: dict[str, LabelPrediction], context: SplitContext, options: ScoringOptions) -> Scored:
        truth = task.indicator([sample.labels[task.name] for sample in context.samples]).astype(bool)
        predicted = truth.copy()
        with_scores = any(prediction.scores is not None for prediction in predictions.values())
        scores = np.zeros(truth.shape) if with_scores else None
        for row, sample in enumerate(context.samples):
            prediction = predictions.get(sample.sample_id)
            predicted[row] = prediction.present if prediction else ~truth[row]
            if with_scores:
                scores[row] = prediction.scores if prediction else 1.0 - truth[row]
        statistics = metrics.multilabel_statistics(truth, predicted)
        section = metrics.multilabel_section(truth, statistics, task.labels, scores=scores)
        section = with_intervals(
            section, per_sequence(statistics, context), metrics.multilabel_headline_from_sums, options.bootstrap, options.seed,
        )
        return Scored(section, {"truth": truth, "predicted": predicted})

    def guess(self, task: MultilabelTask, sample: Sample, kind: str, context: SplitContext, rng: np.random.Generator) -> np.ndarray:
        if kind == "constant":
            # each label's share of the train frames: a label on most train frames is predicted present
            train = context.card.statistics.get("train", {})
            counts = train.get("tasks", {}).get(task.name, {}).get("counts", {})
            frames = max(train.get("samples", 0), 1)
            shares = np.array([counts.get(label, 0) / frames for label in task.labels])
            # on exactly half the frames is not most: just below the writer's threshold, so absent
            return np.where(shares == DECISION_THRESHOLD, np.nextafter(DECISION_THRESHOLD, 0.0), shares)
        return rng.random(len(task.labels))

    def describe(self, task: MultilabelTask, context: SplitContext | None) -> list[str]:
        lines = [
            format_line(2, task.submission_name, f"task {task.name} (multilabel): UTF-8 CSV with a header line"),
            "    sample_id             every sample of the split, each exactly once",
            "    <label>               one column per label, named exactly as the label: 1 present, 0 absent",
            "    score_<label>         optional: one column per label, all or none; confidences in [0, 1] (for mAP)",
        ]
        if context is not None:
            lines.append("    labels (id name): " + ", ".join(f"{i} {name}" for i, name in enumerate(task.labels)))
            lines.append("    header: " + ",".join(["sample_id", *task.labels]))
        return lines

    def tables(self, task: MultilabelTask, results: dict) -> list[Table]:
        section = results[task.name]
        if not section.get("scored"):
            return []
        predicted = [row["predicted"] for row in section["per_class"]]
        extra = {}
        if section.get("mean_average_precision") is not None:
            extra["AP"] = {row["id"]: row.get("average_precision") for row in section["per_class"]}
        return [per_class_table(f"Per label of {task.name}", "label", section["per_class"], predicted, extra)]

    def plots(self, task: MultilabelTask, results: dict, folder: Path) -> list[Path]:
        rows = results[task.name]["per_class"]
        labels = [f"{row['name']} ({row['support']})" for row in rows]
        values = [row["f1"] if row["support"] or row["predicted"] else None for row in rows]
        title = f"{results_label(results)}\n{task.name}: F1 per label (frames with the label; n/a: never true nor predicted)"
        return [bars(labels, values, title, "F1", folder / f"{task.name}_f1.png")]
