"""Scoring a classification task: `<file>.csv` predictions, accuracy, F1, AUROC, ECE (docs/metrics.md).

The predictions file (the task's `submission` name: `activities.csv` for MTLEndovis and MTLESD)
is UTF-8 CSV with a header: `sample_id`, a column named after the task holding the predicted
class (its name, matched exactly first, then ignoring case, spaces, '-' and '_'; or its integer
id), and optionally one `score_<class>` column per class, all or none: probabilities in [0, 1]
summing to 1 per row (within SCORE_SUM_TOLERANCE). The decision column is what accuracy, F1 and
the confusion matrix count; the scores feed AUROC and ECE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.scorers.base import CsvTaskWriter, Scored, Scorer, ScoringOptions, TaskWriter, ZipEntry
from mtlbench.evaluation.scorers.common import (
    SplitContext,
    check_score_header,
    csv_rows,
    format_line,
    probability,
    score_column,
    with_intervals,
)
from mtlbench.evaluation.plots import confusion_plot
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.evaluation.tables import per_class_table
from mtlbench.metrics import activity as metrics
from mtlbench.tasks.classification import ACTIVITY_TASK, ClassificationTask
from mtlbench.taxonomies import NameLookup

SCORE_SUM_TOLERANCE = 1e-3
MAX_LISTED_CLASSES = 20
# Bounds on a predictions file in a zip: the header, then one row per sample with an id, a class
# and a float per class.
HEADER_BYTES = 2**16
ROW_BYTES = 512
SCORE_BYTES = 32
_DECIMAL = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ClassPrediction:
    class_id: int
    scores: np.ndarray | None  # (C,) float64 probabilities, when the file has score columns



class _Writer(CsvTaskWriter):
    """Predictions are (C,) probabilities: normalised to sum to 1, the decision is their arg-max."""

    def __init__(self, task: ClassificationTask, path: Path):
        super().__init__(path, ["sample_id", task.name, *(score_column(name) for name in task.classes)])
        self.task = task

    def add(self, sample_id: str, prediction: Any) -> None:
        scores = np.asarray(prediction, dtype=np.float64)
        classes = self.task.classes
        if scores.shape != (len(classes),) or not np.isfinite(scores).all() or (scores < 0).any() or scores.sum() <= 0:
            raise ValueError(f"{sample_id}: {self.task.name} scores must be {len(classes)} finite non-negative numbers, not all 0")
        scores = scores / scores.sum()
        # repr is the shortest text that reads back as the same float: exact and reproducible.
        self.rows.writerow([sample_id, classes[int(np.argmax(scores))], *(repr(float(value)) for value in scores)])


@SCORERS.register("classification")
class ClassificationScorer(Scorer):
    kind = "classification"
    headline = metrics.HEADLINE_KEYS
    labels = {
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced accuracy",
        "macro_f1": "macro-F1",
        "auroc_macro_ovr": "AUROC (macro one-vs-rest)",
        "ece": "expected calibration error (lower is better)",
    }
    summary = "<task>.csv (activities.csv for MTLEndovis / MTLESD): sample_id,<task>[,score_<class>...]"
    missing_rule = "a missing class counts as an error"

    # --- reading --------------------------------------------------------------------------------
    def read(self, task: ClassificationTask, path: Path, context: SplitContext) -> dict[str, ClassPrediction]:
        expected = [score_column(name) for name in task.classes]
        fixed = ("sample_id", task.name)

        def check_header(header: list[str]) -> None:
            check_score_header(path, header, fixed, task.classes, task.name, ", ".join(fixed))

        lookup = NameLookup.of(task.classes)
        predictions = {}
        for line, values in csv_rows(path, context, check_header):
            scores = self._scores(path, line, [(column, values[column]) for column in expected]) if expected[0] in values else None
            predictions[values["sample_id"]] = ClassPrediction(self._class(task, path, line, values[task.name], lookup), scores)
        return predictions

    @staticmethod
    def _class(task: ClassificationTask, path: Path, line: int, value: str, lookup: NameLookup) -> int:
        found = lookup.find(value)
        if found is not None:
            return found
        if _DECIMAL.fullmatch(value) and int(value) < len(task.classes):
            return int(value)
        vocabulary = (
            ", ".join(f"{i} {name}" for i, name in enumerate(task.classes))
            if len(task.classes) <= MAX_LISTED_CLASSES
            else f"{len(task.classes)} classes, see mtlbench evaluate --format"
        )
        raise InputError(path, f"line {line}: {task.name} {value!r} is not in the vocabulary ({vocabulary})")

    @staticmethod
    def _scores(path: Path, line: int, cells: list[tuple[str, str]]) -> np.ndarray:
        scores = np.array([probability(path, line, column, cell) for column, cell in cells], dtype=np.float64)
        total = float(scores.sum())
        if abs(total - 1.0) > SCORE_SUM_TOLERANCE:
            raise InputError(path, f"line {line}: scores sum to {total:.6g}, not 1 (tolerance {SCORE_SUM_TOLERANCE})")
        return scores

    def zip_entries(self, task, name, entries, context, where) -> list[ZipEntry]:
        limit = HEADER_BYTES + len(context.samples) * (ROW_BYTES + SCORE_BYTES * len(task.classes))
        return [ZipEntry(relative, f"{name} file", limit) for relative, _ in entries]

    # --- writing --------------------------------------------------------------------------------
    def writer(self, task: ClassificationTask, root: Path, context: SplitContext) -> TaskWriter:
        return _Writer(task, root / task.submission_name)

    # --- scoring --------------------------------------------------------------------------------
    def score(self, task: ClassificationTask, predictions: dict[str, ClassPrediction], context: SplitContext, options: ScoringOptions) -> Scored:
        truth = np.array([sample.labels[task.name].id for sample in context.samples], dtype=np.intp)
        predicted = np.array(
            [predictions[s.sample_id].class_id if s.sample_id in predictions else metrics.MISSING for s in context.samples],
            dtype=np.intp,
        )
        scores = None
        if any(prediction.scores is not None for prediction in predictions.values()):
            zeros = np.zeros(len(task.classes))  # a missing prediction has all-zero scores
            scores = np.stack([predictions[s.sample_id].scores if s.sample_id in predictions else zeros for s in context.samples])
        section = metrics.activity_metrics(truth, predicted, task.classes, scores=scores, sequences=context.sequences)
        _, per_sequence = metrics.sequence_confusions(truth, predicted, len(task.classes), context.sequences)
        section = with_intervals(
            section, {"confusion": per_sequence}, lambda sums: metrics.headline_from_confusion(sums["confusion"]),
            options.bootstrap, options.seed,
        )
        return Scored(section, {"truth": truth, "predicted": predicted})

    # --- dummy, format, plots -------------------------------------------------------------------
    def guess(self, task: ClassificationTask, sample: Sample, kind: str, context: SplitContext, rng: np.random.Generator) -> np.ndarray:
        if kind == "constant":
            counts = context.card.statistics.get("train", {}).get("tasks", {}).get(task.name, {}).get("counts", {})
            # the lowest id wins ties, so a dataset without train counts predicts class 0
            return np.eye(len(task.classes))[int(np.argmax([counts.get(name, 0) for name in task.classes]))]
        # Dirichlet(1) is exchangeable, so its arg-max (the predicted class) is uniform.
        return rng.dirichlet(np.ones(len(task.classes)))

    def describe(self, task: ClassificationTask, context: SplitContext | None) -> list[str]:
        lines = [
            format_line(2, task.submission, f"task {task.name} (classification): UTF-8 CSV with a header line"),
            "    sample_id             every sample of the split, each exactly once",
            format_line(4, task.name, "class name (exact, or ignoring case, spaces, '-' and '_') or its integer id"),
            format_line(4, f"score_<{task.name}>", "optional: one column per class, all or none; probabilities in [0, 1]"),
            f"                          summing to 1 per row (within {SCORE_SUM_TOLERANCE})",
        ]
        if context is not None:
            lines.append("    classes (id name): " + ", ".join(f"{i} {name}" for i, name in enumerate(task.classes)))
            lines.append("    header with scores: " + ",".join(["sample_id", task.name, *map(score_column, task.classes)]))
        return lines

    def tables(self, task: ClassificationTask, results: dict) -> list[Table]:
        """Per class: support, precision, recall, F1; for the activity task also the mIoU of each
        activity's frames when the segmentation task reports it (also when only it was scored)."""
        section = results[task.name]
        per_activity = {}
        if task.name == ACTIVITY_TASK:
            per_activity = next((results[name]["per_activity"] for name in results if isinstance(results[name], dict) and results[name].get("per_activity")), [])
        if not section.get("scored") and not per_activity:
            return []
        confusion = section.get("confusion_matrix")
        predicted = [sum(row[column] for row in confusion) for column in range(len(confusion))] if confusion else None
        rows = section["per_class"] or [{"id": row["id"], "name": row["name"], "support": row["frames"]} for row in per_activity]
        extra = {"mIoU of its frames": {row["id"]: row["miou"] for row in per_activity}} if per_activity else {}
        return [per_class_table(f"Per {task.name}", task.name, rows, predicted, extra)]

    def plots(self, task: ClassificationTask, results: dict, folder: Path) -> list[Path]:
        return [confusion_plot(results, task.name, folder / f"{task.name}_confusion.png")]
