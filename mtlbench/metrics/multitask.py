"""Multi-task summary: relative change of a multi-task model against single-task baselines.

Metric set, by task type (DELTA_METRICS): classification accuracy and macro_f1, segmentation
miou and pixel_accuracy, multilabel micro_f1 and macro_f1, text bleu_2, rouge_l and cosine_similarity; all are
higher-is-better, so the sign factor (-1)^l of the published formulas is +1 throughout.
With the relative change r_k = 100 (M_k - B_k) / B_k of each metric k, in percent:

  delta_m  flat mean over all K metrics (CAGrad / Nash-MTL papers): 1/K sum_k r_k
  delta_p  per task first, then across tasks (LibMTL): 1/T sum_t 1/M_t sum_{m in t} r_m

A metric enters only when both the result and a baseline have it (not None) and the baseline
is above 0: at 0 the relative change is undefined, and below 0 (a cosine similarity can be
negative) dividing by it would flip the sign of an improvement. Each dropped metric gets a null
reason.
"""

from __future__ import annotations

from collections.abc import Sequence

DELTA_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1"),
    "segmentation": ("miou", "pixel_accuracy"),
    "multilabel": ("micro_f1", "macro_f1"),
    "text": ("bleu_2", "rouge_l", "cosine_similarity"),
}

VARIANT = (
    "delta_m = 100/K sum_k (M_k - B_k)/B_k over all metrics (flat); "
    "delta_p = 100/T sum_t 1/M_t sum_m (M - B)/B (per task, then across tasks); all metrics higher-is-better"
)


def _value(result: dict, task: str, metric: str) -> float | None:
    return (result.get(task) or {}).get(metric)


def _baseline_value(baselines: Sequence[dict], task: str, metric: str) -> float | None:
    """The value from the first baseline that has the metric."""
    return next((v for v in (_value(b, task, metric) for b in baselines) if v is not None), None)


def _relative_change(value: float | None, baseline: float | None) -> tuple[float | None, str | None]:
    """(percent change, None) or (None, why it is undefined)."""
    if value is None:
        return None, "not in the results"
    if baseline is None:
        return None, "no baseline has this metric"
    if baseline <= 0:
        return None, f"baseline is {baseline}: the relative change needs a baseline above 0"
    return 100.0 * (value - baseline) / baseline, None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def multitask_deltas(results: dict, baselines: Sequence[dict], task_kinds: dict[str, str]) -> dict:
    """delta_m and delta_p (percent) of `results` against single-task `baselines` (results.json-like);
    `task_kinds` maps each task of the dataset to its type, in the dataset's task order."""
    rows = []
    null_reasons = {}
    for task, kind in task_kinds.items():
        for metric in DELTA_METRICS[kind]:
            value = _value(results, task, metric)
            baseline = _baseline_value(baselines, task, metric)
            change, reason = _relative_change(value, baseline)
            if reason:
                null_reasons[f"{task}.{metric}"] = reason
            rows.append(
                {
                    "task": task,
                    "metric": metric,
                    "value": value,
                    "baseline": baseline,
                    "relative_change_percent": change,
                }
            )

    usable = [row for row in rows if row["relative_change_percent"] is not None]
    per_task = [
        _mean([row["relative_change_percent"] for row in usable if row["task"] == task]) for task in task_kinds
    ]
    delta_p = _mean([mean for mean in per_task if mean is not None])
    if not usable:
        null_reasons["delta_m"] = null_reasons["delta_p"] = "no metric in common between results and baselines"
    return {
        "delta_m": _mean([row["relative_change_percent"] for row in usable]),
        "delta_p": delta_p,
        "variant": VARIANT,
        "metrics": rows,
        "null_reasons": null_reasons,
    }
