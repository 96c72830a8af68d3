"""The task types, by name: `TASK_TYPES.get(kind)` is the Task subclass of that kind."""

from mtlbench.registry import Registry

TASK_TYPES = Registry(
    "task type",
    modules=tuple(f"mtlbench.tasks.{kind}" for kind in ("classification", "segmentation", "multilabel", "text")),
)
