"""The scoring side of each task type, one file each, registered by type in SCORERS."""

from __future__ import annotations

from mtlbench.evaluation.scorers.base import Scorer
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.tasks import Task


def scorer_of(task: Task) -> Scorer:
    return SCORERS.get(task.kind)()
