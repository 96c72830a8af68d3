"""Checkpoint selection on the validation split: the metrics it may use and the default rule."""

from __future__ import annotations

from mtlbench.metrics.multitask import DELTA_METRICS

SELECTION_METRICS = (
    "activity.accuracy",
    "activity.balanced_accuracy",
    "activity.macro_f1",
    "segmentation.miou",
    "segmentation.miou_foreground",
    "segmentation.mdice",
    "segmentation.pixel_accuracy",
)
# The metrics whose relative improvement over the first epoch selects the checkpoint by default:
# the multi-task delta metrics of the runners' two tasks.
RELATIVE_METRICS = tuple(
    f"{task}.{metric}" for task, kind in (("activity", "classification"), ("segmentation", "segmentation")) for metric in DELTA_METRICS[kind]
)
RELATIVE = "relative"
SELECTION_RULES = (RELATIVE, *SELECTION_METRICS)


def selection_score(values: dict, reference: dict, selection: str) -> float | None:
    """Higher is better. 'relative': mean relative change of RELATIVE_METRICS against the first
    epoch (the plain difference where the first epoch's value is 0, which has no relative change)."""
    if selection != RELATIVE:
        return values.get(selection)
    changes = [
        (values[key] - reference[key]) / (reference[key] or 1.0)
        for key in RELATIVE_METRICS
        if values.get(key) is not None and reference.get(key) is not None
    ]
    return sum(changes) / len(changes) if changes else None
