"""`evaluate`: a predictions folder (or zip) against one split of a dataset -> the results dict.

The results dict is what results.json holds (docs/metrics.md): a section per task of the
dataset, scored by its task type's scorer (mtlbench/evaluation/scorers/), always present, with
every headline metric a number or null, and the reason for each null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtlbench import __version__
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.errors import InputError
from mtlbench.evaluation.results_file import ResultsSource, load_results
from mtlbench.evaluation.scorers import scorer_of
from mtlbench.evaluation.scorers.base import ScoringOptions
from mtlbench.evaluation.scorers.common import SplitContext
from mtlbench.evaluation.submission import Submission, open_submission
from mtlbench.metrics import robustness
from mtlbench.metrics.multitask import multitask_deltas
from mtlbench.progress import ProgressFn, silent
from mtlbench.taxonomies import IGNORE_INDEX

EVALUATOR_VERSION = "1.2.0"
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
    embedding_model: str | Path | None = None,
    progress: ProgressFn = silent,
) -> dict:
    """Score a submission; see docs/format-submission.md for its format and docs/metrics.md for the output.

    `baselines` are results (results.json paths or dicts) of single-task models on the same
    dataset and split: they add the multi-task deltas. On a robustness set (samples with a
    `corruption` column) the results also hold `robustness`: the metrics per corruption and
    severity, mPC and rPC against `clean` (results of the same model on the base dataset's test
    split; without it, the set's own `clean` frames if it has them) and CE / mCE against
    `reference` (results of a reference model on the same set). Results of another dataset or
    split are refused, before anything is scored. `embedding_model`: the sentence-transformers
    folder whose embeddings text tasks are compared with (None: all-MiniLM-L6-v2)."""
    card = dataset if isinstance(dataset, DatasetCard) else read_dataset(dataset)
    samples = card.split(split)
    baseline_results = [load_results(source, "baseline", card.fingerprint, split) for source in baselines]
    robustness_inputs = _robustness_inputs(card, clean, clean_source, reference, split) if _is_robustness_set(samples) else None
    if robustness_inputs is None and (clean is not None or reference is not None):
        raise InputError(card.root / "dataset.json", "clean and reference results apply to robustness sets only (build-dataset mtlendovis-gen)")
    options = ScoringOptions(
        bootstrap=bootstrap, seed=seed, workers=workers, progress=progress,
        embedding_model=None if embedding_model is None else Path(embedding_model),
    )
    with open_submission(
        Path(predictions), card, split, allow_missing=allow_missing, ignore_fingerprint=ignore_fingerprint
    ) as submission:
        context = SplitContext(card, split, samples)
        results = {
            "evaluator": {"version": EVALUATOR_VERSION, "mtlbench_version": __version__},
            "dataset": {"name": card.name, "version": card.meta["version"], "fingerprint": card.fingerprint, "split": split},
            "submission": _describe_submission(submission, ignore_fingerprint, card),
            "counts": {"frames": len(samples), "sequences": len(set(context.sequences))},
            "bootstrap": {"resamples": bootstrap, "seed": seed, "confidence": 0.95, "unit": "sequence"},
        }
        scored = [task for task in card.tasks if task.name in submission.predictions]
        for task in scored:
            scorer_of(task).prepare(task, options)
        frames = {}
        for task in card.tasks:
            scorer = scorer_of(task)
            if task.name in submission.predictions:
                scored = scorer.score(task, submission.predictions[task.name], context, options)
                results[task.name], frames[task.name] = scored.section, scored.frames
            else:
                results[task.name] = scorer.not_scored(task)
    if robustness_inputs is not None:
        results["robustness"] = _robustness(card, samples, frames, robustness_inputs)
    if baseline_results:
        results["multitask"] = multitask_deltas(results, baseline_results, {task.name: task.kind for task in card.tasks})
    results["definitions"] = {
        "ignore_index": IGNORE_INDEX,
        "missing_predictions": {task.name: scorer_of(task).missing_rule for task in card.tasks},
        "confidence_intervals": "95% percentile bootstrap resampling whole sequences (cluster bootstrap)",
        **{task.name: results[task.name].pop("definitions", None) for task in card.tasks},
    }
    return results


def _robustness(card: DatasetCard, samples, frames: dict, inputs: dict) -> dict:
    """The metrics per corruption and severity of the activity and segmentation tasks, and their summary."""
    conditions = [(sample.extra["corruption"], int(sample.extra["severity"])) for sample in samples]
    activity = frames.get(card.activity_task.name, {}) if card.activity_task else {}
    segmentation = card.segmentation
    per_condition = robustness.condition_metrics(
        conditions,
        activity.get("truth"),
        activity.get("predicted"),
        card.activities if "truth" in activity else None,
        frames.get(segmentation.name, {}).get("confusions") if segmentation else None,
        list(segmentation.class_names) if segmentation else None,
    )
    return robustness.robustness_summary(per_condition, **inputs)


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


def _describe_submission(submission: Submission, ignore_fingerprint: bool, card: DatasetCard) -> dict:
    claimed = submission.meta.get("dataset_fingerprint")
    return {
        "meta": submission.meta,
        "tasks_scored": list(submission.tasks),
        "tasks_not_scored": [task.name for task in card.tasks if task.name not in submission.tasks],
        "missing": {
            task: {"count": len(ids), "examples": list(ids[:MAX_LISTED_MISSING])}
            for task, ids in submission.missing.items()
            if ids
        },
        "fingerprint_check": (
            "matches" if claimed == card.fingerprint else "not claimed" if claimed is None else "differs (ignored on request)"
        ),
    }
