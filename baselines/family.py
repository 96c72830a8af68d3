"""Run families: what differs between the EndoARSS runners and the vision-language runners.

The run framework (run.py, train.py: configuration, checkpoints, resume, DDP, selection,
provenance) is shared; a family supplies, for one run, the tasks it trains, the model, the
batches, the task losses, the predictions of a split (sample -> {task: value in the submission
writer's form}) and the validation metrics (`task.metric` -> value) that select the checkpoint.
The architecture's registry decides the family.
"""

from __future__ import annotations

import abc
from typing import Any, Iterator, NamedTuple

import torch

from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.errors import InputError
from baselines.selection import RELEASE_DELTA_P, RELEASE_TASK_METRICS, RULES
from mtlbench.metrics.multitask import DELTA_METRICS


class Prediction(NamedTuple):
    sample: Sample
    values: dict[str, Any]  # task name -> what its submission writer takes


class Family(abc.ABC):
    """One run's task-specific parts; made after the configuration and dataset are checked."""

    def __init__(self, config, card: DatasetCard, tasks: tuple[str, ...]):
        self.config = config
        self.card = card
        self.tasks = tasks

    @property
    def relative_metrics(self) -> tuple[str, ...]:
        """The validation metrics whose mean relative change selects by default: each task's delta
        metrics that validation computes (not the text embedding cosine, which needs a second model)."""
        computed = self.selection_metrics()
        keys = (f"{name}.{metric}" for name in self.tasks for metric in DELTA_METRICS[self.card.task(name).kind])
        return tuple(key for key in keys if key in computed)

    def description(self) -> dict:
        """What the run's records say about the model beyond its configuration (e.g. what an ablation removed)."""
        return {}

    @abc.abstractmethod
    def selection_metrics(self) -> tuple[str, ...]:
        """Every `task.metric` name validation_metrics returns (what train.selection may name)."""

    @abc.abstractmethod
    def build_model(self) -> torch.nn.Module:
        """The model; it has shared_parameters()."""

    @abc.abstractmethod
    def train_loader(self, epoch: int, runtime):
        """Batches of the train split, shuffled by (seed, epoch) (and the rank, when distributed)."""

    @abc.abstractmethod
    def losses(self, model, batch: dict, runtime) -> dict[str, torch.Tensor]:
        """The task losses of one batch (forward under the runtime's autocast)."""

    @abc.abstractmethod
    def predict(self, model, card: DatasetCard, split: str, runtime) -> Iterator[Prediction]:
        """Predictions of every sample of `split` of `card` (this dataset or a robustness set of it)."""

    @abc.abstractmethod
    def validation_metrics(self, predictions: Iterator[Prediction], card: DatasetCard) -> dict[str, float | None]:
        """`task.metric` -> value over the predictions (higher is better)."""

    def check_selection(self) -> None:
        selection = self.config.train.selection
        if selection == RELEASE_DELTA_P and not any(key in self.selection_metrics() for keys in RELEASE_TASK_METRICS.values() for key in keys):
            raise InputError("train.selection", f"{RELEASE_DELTA_P} scores the EndoARSS tasks (activity, segmentation), which this run does not train")
        if selection not in RULES and selection not in self.selection_metrics():
            raise InputError("train.selection", f"{selection!r} is not one of {', '.join(RULES)} or: {', '.join(self.selection_metrics())}")


def resolve_tasks(config, card: DatasetCard, supported_kinds: tuple[str, ...]) -> tuple[str, ...]:
    """config.tasks checked against the dataset, or (when empty) the dataset's tasks of config.task_types."""
    if config.tasks:
        for name in config.tasks:
            kinds = {task.name: task.kind for task in card.tasks}
            if name not in kinds:
                raise InputError("tasks", f"{card.name} has no task {name!r} (it has: {', '.join(kinds)})")
            if kinds[name] not in supported_kinds:
                raise InputError("tasks", f"{name!r} is a {kinds[name]} task; architecture {config.model.architecture} trains {', '.join(supported_kinds)} tasks")
        return tuple(config.tasks)
    chosen = tuple(task.name for task in card.tasks if task.kind in config.task_types and task.kind in supported_kinds)
    if not chosen:
        raise InputError("tasks", f"{card.name} has no task of the types {', '.join(config.task_types)} that architecture {config.model.architecture} trains")
    return chosen
