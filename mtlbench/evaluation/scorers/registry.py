"""The scorers, by task type: `SCORERS.get(task.kind)` scores a task of that type."""

from mtlbench.registry import Registry

SCORERS = Registry(
    "scorer",
    modules=tuple(f"mtlbench.evaluation.scorers.{kind}" for kind in ("classification", "segmentation", "multilabel", "text")),
)
