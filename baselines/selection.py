"""Checkpoint selection on the validation split: the metrics it may use and the default rule."""

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


def selection_score(values: dict, reference: dict, selection: str, relative_metrics: tuple[str, ...]) -> float | None:
    """Higher is better. 'relative': mean relative change of `relative_metrics` (the run family's:
    each task's multi-task delta metrics) against the first epoch (the plain difference where the
    first epoch's value is 0, which has no relative change)."""
    if selection != RELATIVE:
        return values.get(selection)
    changes = [
        (values[key] - reference[key]) / (reference[key] or 1.0)
        for key in relative_metrics
        if values.get(key) is not None and reference.get(key) is not None
    ]
    return sum(changes) / len(changes) if changes else None
