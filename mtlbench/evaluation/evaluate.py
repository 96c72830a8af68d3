"""`evaluate`: a predictions folder (or zip) against one split of a dataset -> the results dict.

The results dict is what results.json holds (docs/metrics.md): both task sections are always
present, with every headline metric a number in [0, 1] or null, and the reason for each null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mtlbench import __version__
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.errors import InputError
from mtlbench.evaluation.results_file import ResultsSource, load_results
from mtlbench.evaluation.streaming import MaskPair, frame_confusions
from mtlbench.evaluation.submission import Submission, open_submission
from mtlbench.metrics import activity, robustness, segmentation
from mtlbench.metrics.bootstrap import cluster_bootstrap, sum_by_sequence
from mtlbench.metrics.multitask import multitask_deltas
from mtlbench.progress import ProgressFn, silent
from mtlbench.tasks import TASKS
from mtlbench.taxonomies import IGNORE_INDEX

EVALUATOR_VERSION = "1.0.0"
ACTIVITY_HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")
SEGMENTATION_HEADLINE = ("miou", "miou_foreground", "mdice", "pixel_accuracy", "challenge_iou", "isi_iou", "mciou")
MAX_LISTED_MISSING = 10


def evaluate(
    predictions: str | Path,
    dataset: str | Path | DatasetCard,
    split: str = "test",
    *,
    baselines: Sequence[ResultsSource] = (),
    workers: int = 1,
    bootstrap: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    ignore_fingerprint: bool = False,
    clean: ResultsSource | None = None,
    clean_source: str | None = None,
    reference: ResultsSource | None = None,
    progress: ProgressFn = silent,
) -> dict:
    """Score a submission; see docs/format-submission.md for its format and docs/metrics.md for the output.

    `baselines` are results (results.json paths or dicts) of single-task models on the same
    dataset and split: they add the multi-task deltas. On a robustness set (samples with a
    `corruption` column) the results also hold `robustness`: the metrics per corruption and
    severity, mPC and rPC against `clean` (results of the same model on the base dataset's test
    split; without it, the set's own `clean` frames if it has them) and CE / mCE against
    `reference` (results of a reference model on the same set). Results of another dataset or
    split are refused, before anything is scored."""
    card = dataset if isinstance(dataset, DatasetCard) else read_dataset(dataset)
    samples = card.split(split)
    baseline_results = [load_results(source, "baseline", card.fingerprint, split) for source in baselines]
    robustness_inputs = _robustness_inputs(card, clean, clean_source, reference, split) if _is_robustness_set(samples) else None
    if robustness_inputs is None and (clean is not None or reference is not None):
        raise InputError(card.root / "dataset.json", "clean and reference results apply to robustness sets only (build-dataset mtlendovis-gen)")
    with open_submission(
        Path(predictions), card, split, allow_missing=allow_missing, ignore_fingerprint=ignore_fingerprint
    ) as submission:
        sequences = [sample.sequence for sample in samples]
        results = {
            "evaluator": {"version": EVALUATOR_VERSION, "mtlbench_version": __version__},
            "dataset": {"name": card.name, "version": card.meta["version"], "fingerprint": card.fingerprint, "split": split},
            "submission": _describe_submission(submission, ignore_fingerprint, card),
            "counts": {"frames": len(samples), "sequences": len(set(sequences))},
            "bootstrap": {"resamples": bootstrap, "seed": seed, "confidence": 0.95, "unit": "sequence"},
        }
        truth = predicted = confusions = None
        if "activity" in submission.tasks:
            truth, predicted, scores = _activity_arrays(card, samples, submission)
            results["activity"] = _score_activity(card, samples, truth, predicted, scores, bootstrap, seed)
        else:
            results["activity"] = _not_scored(ACTIVITY_HEADLINE)
        if "segmentation" in submission.tasks:
            confusions = frame_confusions(_mask_pairs(card, samples, submission), len(card.classes), workers, progress)
            results["segmentation"] = _score_segmentation(card, samples, confusions, bootstrap, seed)
        else:
            results["segmentation"] = _not_scored(SEGMENTATION_HEADLINE)
    if robustness_inputs is not None:
        conditions = [(sample.extra["corruption"], int(sample.extra["severity"])) for sample in samples]
        per_condition = robustness.condition_metrics(
            conditions, truth, predicted, card.activities, confusions, [cls.name for cls in card.classes]
        )
        results["robustness"] = robustness.robustness_summary(per_condition, **robustness_inputs)
    if baseline_results:
        results["multitask"] = multitask_deltas(results, baseline_results)
    results["definitions"] = {
        "ignore_index": IGNORE_INDEX,
        "missing_predictions": "scored as wrong: a missing activity counts as an error, a missing mask as no pixel right",
        "confidence_intervals": "95% percentile bootstrap resampling whole sequences (cluster bootstrap)",
        "activity": results["activity"].pop("definitions", None),
        "segmentation": results["segmentation"].pop("definitions", None),
    }
    return results


def _is_robustness_set(samples) -> bool:
    return "corruption" in samples[0].extra if samples else False


def _robustness_inputs(card: DatasetCard, clean, clean_source: str | None, reference, split: str) -> dict:
    """The keyword arguments of robustness_summary beyond the per-condition metrics."""
    inputs: dict = {"clean": None}
    if clean is not None:
        base = card.meta["source"].get("base") or {}
        clean_results = load_results(clean, "clean results", base.get("fingerprint"), "test")
        default_source = "clean results given by the caller" if isinstance(clean, dict) else f"clean results {Path(clean).name}"
        inputs.update(clean=robustness.clean_from_results(clean_results), clean_source=clean_source or default_source)
    if reference is not None:
        reference_results = load_results(reference, "reference results", card.fingerprint, split, needs_robustness=True)
        method = reference_results.get("submission", {}).get("meta", {}).get("method")
        name = method or ("the reference" if isinstance(reference, dict) else Path(reference).name)
        inputs.update(reference=reference_results["robustness"], reference_name=name)
    return inputs


def _with_intervals(metrics: dict, per_sequence: dict[str, np.ndarray], statistic, resamples: int, seed: int) -> dict:
    metrics["scored"] = True
    if resamples <= 0:
        metrics["ci"] = None
        metrics["null_reasons"]["ci"] = "bootstrap turned off (--bootstrap 0)"
        return metrics
    drawn = cluster_bootstrap(per_sequence, statistic, resamples=resamples, seed=seed)
    metrics["ci"] = drawn["intervals"]
    for key, reason in drawn["null_reasons"].items():
        metrics["null_reasons"][f"ci.{key}"] = reason
    return metrics


def _activity_arrays(card, samples, submission: Submission) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """True and predicted activity ids (-1: missing) and the scores (all-zero rows when missing)."""
    truth = np.array([sample.activity_id for sample in samples], dtype=np.intp)
    predicted = np.array([submission.predicted_activity.get(s.sample_id, -1) for s in samples], dtype=np.intp)
    scores = None
    if submission.scores is not None:
        zeros = np.zeros(len(card.activities))
        scores = np.stack([submission.scores.get(sample.sample_id, zeros) for sample in samples])
    return truth, predicted, scores


def _score_activity(card, samples, truth, predicted, scores, resamples: int, seed: int) -> dict:
    sequences = [sample.sequence for sample in samples]
    metrics = activity.activity_metrics(truth, predicted, card.activities, scores=scores, sequences=sequences)
    _, per_sequence = activity.sequence_confusions(truth, predicted, len(card.activities), sequences)
    return _with_intervals(
        metrics,
        {"confusion": per_sequence},
        lambda sums: activity.headline_from_confusion(sums["confusion"]),
        resamples,
        seed,
    )


def _mask_pairs(card: DatasetCard, samples, submission: Submission) -> list[MaskPair]:
    return [MaskPair(card.root, sample, submission.mask_paths.get(sample.sample_id), len(card.classes)) for sample in samples]


def _score_segmentation(card, samples, confusions: np.ndarray, resamples: int, seed: int) -> dict:
    class_names = [cls.name for cls in card.classes]
    frame_activities = np.array([sample.activity_id for sample in samples], dtype=np.intp)
    metrics = segmentation.segmentation_metrics(
        confusions, class_names, frame_activities=frame_activities, activity_names=card.activities
    )
    per_frame = segmentation.frame_statistics(confusions, background=0)
    _, per_sequence = sum_by_sequence(per_frame, [sample.sequence for sample in samples])
    return _with_intervals(
        metrics,
        per_sequence,
        lambda sums: segmentation.headline_from_sums(sums, background=0),
        resamples,
        seed,
    )


def _not_scored(headline: tuple[str, ...]) -> dict:
    reason = "task not in the submission"
    return {**{key: None for key in headline}, "per_class": [], "scored": False, "null_reasons": {key: reason for key in headline}}


def _describe_submission(submission: Submission, ignore_fingerprint: bool, card: DatasetCard) -> dict:
    claimed = submission.meta.get("dataset_fingerprint")
    return {
        "meta": submission.meta,
        "tasks_scored": list(submission.tasks),
        "tasks_not_scored": [task for task in TASKS if task not in submission.tasks],
        "missing": {
            task: {"count": len(ids), "examples": list(ids[:MAX_LISTED_MISSING])}
            for task, ids in submission.missing.items()
            if ids
        },
        "fingerprint_check": (
            "matches" if claimed == card.fingerprint else "not claimed" if claimed is None else "differs (ignored on request)"
        ),
    }
