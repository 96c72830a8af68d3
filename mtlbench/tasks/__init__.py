"""Task types: what a dataset's tasks are and how their labels are stored (mtlbench/tasks/base.py).

`task_from_json` reads one entry of dataset.json's "tasks" through the TASK_TYPES registry.
"""

from __future__ import annotations

from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.tasks.base import ClassLabel, LabelSet, MaskFile, Task, TextLabel
from mtlbench.tasks.registry import TASK_TYPES

__all__ = ["ClassLabel", "LabelSet", "MaskFile", "TASK_TYPES", "Task", "TextLabel", "task_from_json"]


def task_from_json(data: object, where: str | Path) -> Task:
    if not isinstance(data, dict):
        raise InputError(where, "every entry of tasks must be an object with a name and a type")
    return TASK_TYPES.get(data.get("type"), f"{where}: task {data.get('name')!r}").from_json(data, where)
