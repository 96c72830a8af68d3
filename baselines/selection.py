"""Checkpoint selection on the validation split: the metrics it may use and the rules.

A run keeps the epoch with the highest score. `train.selection` names one validation metric
(`task.metric`) or a rule that compares each epoch against the first:

- relative: the mean relative change of the run family's delta metrics (each task's), all
  metrics weighted alike;
- release_delta_p: the EndoARSS release's Δp (LibMTL's count_improvement) with the release's
  metrics: per task the mean relative change of its metrics (activity: accuracy;
  segmentation: mIoU and pixel accuracy), then the mean over the tasks. The release applies it
  to the test split; here it sees validation only, like every rule.

A relative change against a first-epoch value of 0 is the plain difference (the release divides
by zero there).
"""

from __future__ import annotations

SELECTION_METRICS = (
    "activity.accuracy",
    "activity.balanced_accuracy",
    "activity.macro_f1",
    "segmentation.miou",
    "segmentation.miou_foreground",
    "segmentation.mdice",
    "segmentation.pixel_accuracy",
)
RELATIVE = "relative"
RELEASE_DELTA_P = "release_delta_p"
RULES = (RELATIVE, RELEASE_DELTA_P)
RELEASE_TASK_METRICS = {"activity": ("activity.accuracy",), "segmentation": ("segmentation.miou", "segmentation.pixel_accuracy")}


def _mean_relative_change(values: dict, reference: dict, keys) -> float | None:
    changes = [
        (values[key] - reference[key]) / (reference[key] or 1.0)
        for key in keys
        if values.get(key) is not None and reference.get(key) is not None
    ]
    return sum(changes) / len(changes) if changes else None


def selection_score(values: dict, reference: dict, selection: str, relative_metrics: tuple[str, ...]) -> float | None:
    """Higher is better; None where the epoch has none of the metrics the selection needs.
    `relative_metrics`: the run family's delta metrics, for the relative rule."""
    if selection == RELATIVE:
        return _mean_relative_change(values, reference, relative_metrics)
    if selection == RELEASE_DELTA_P:
        per_task = [_mean_relative_change(values, reference, keys) for keys in RELEASE_TASK_METRICS.values()]
        scored = [change for change in per_task if change is not None]
        return sum(scored) / len(scored) if scored else None
    return values.get(selection)
