"""The EndoARSS family: activity recognition and scene segmentation (architectures hps, single_task)."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from baselines.config import TASKS
from baselines.data import SplitView, training_loader
from baselines.family import Family, Prediction
from baselines.inference import predict, validation_metrics
from baselines.models import build_model
from baselines.selection import SELECTION_METRICS
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.progress import ProgressFn, silent
from mtlbench.taxonomies import IGNORE_INDEX


def task_losses(outputs: dict[str, torch.Tensor], batch: dict, device) -> dict[str, torch.Tensor]:
    losses = {}
    if "activity" in outputs:
        losses["activity"] = F.cross_entropy(outputs["activity"].float(), batch["activity"].to(device))
    if "segmentation" in outputs:
        losses["segmentation"] = F.cross_entropy(
            outputs["segmentation"].float(), batch["mask"].to(device), ignore_index=IGNORE_INDEX
        )
    return losses


class EndoARSSFamily(Family):
    def __init__(self, config, card: DatasetCard, progress: ProgressFn = silent):
        tasks = tuple(config.tasks) or TASKS
        unknown = [task for task in tasks if task not in TASKS]
        if unknown:
            raise InputError("tasks", f"architecture {config.model.architecture} trains {', '.join(TASKS)}, not {', '.join(unknown)}")
        if card.segmentation is None or card.activity_task is None:
            raise InputError(
                card.root, f"architecture {config.model.architecture} trains activity and segmentation, which {card.name} lacks "
                "(its tasks are for the vision-language presets, e.g. vlm-small)",
            )
        super().__init__(config, card, tasks)
        self.progress = progress  # shows a prepared cache being built (data.cache)
        self._train_view: SplitView | None = None

    @property
    def train_view(self) -> SplitView:
        """Made on first use, so that a prepared cache is built only after the run's checks (the
        model and its weights file included) have passed."""
        if self._train_view is None:
            self._train_view = SplitView(self.card, "train", self.config.data, train=True, seed=self.config.train.seed, progress=self.progress)
        return self._train_view

    def selection_metrics(self) -> tuple[str, ...]:
        return tuple(name for name in SELECTION_METRICS if name.split(".")[0] in self.tasks)

    def build_model(self) -> torch.nn.Module:
        return build_model(self.config.model, self.tasks, len(self.card.classes), len(self.card.activities), tuple(self.config.data.input_size))

    def train_loader(self, epoch: int, runtime):
        return training_loader(self.train_view, self.config.data, self.config.train.seed, epoch, runtime.distributed, runtime.device)

    def losses(self, model, batch: dict, runtime) -> dict[str, torch.Tensor]:
        with runtime.autocast():
            outputs = model(batch["image"].to(runtime.device))
        return task_losses(outputs, batch, runtime.device)

    def predict(self, model, card: DatasetCard, split: str, runtime) -> Iterator[Prediction]:
        view = SplitView(card, split, self.config.data, train=False, seed=self.config.train.seed, progress=self.progress)
        return predict(model, view, self.config.data, runtime.device, runtime.autocast, self.config.model.align_corners)

    def validation_metrics(self, predictions: Iterator[Prediction], card: DatasetCard) -> dict[str, float | None]:
        return validation_metrics(predictions, card.root, [cls.name for cls in card.classes], card.activities)
