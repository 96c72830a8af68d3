"""The interface every weighting method implements, and what the loss-combining methods share.

The trainer calls `backward(losses, shared)` once per step instead of `loss.backward()`, and
`epoch_end(epoch, mean_losses)` after each training epoch. A method is a Module so that its
learnable parameters (UW) reach the optimiser and all of its state (gradient EMAs, loss
history, nadir) is saved and restored with `state_dict()` / `load_state_dict()`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from baselines.config import WeightingConfig

# Keeps log(L) finite when a loss underflows to exactly 0 (a confidently right classifier in
# fp32), and ratios finite when their denominator vanishes.
EPS = 1e-8


class Weighting(torch.nn.Module, abc.ABC):
    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__()
        if not tasks:
            raise ValueError("a weighting method needs at least one task")
        self.tasks = tuple(tasks)
        self.config = config

    @abc.abstractmethod
    def backward(self, losses: dict[str, Tensor], shared: Sequence[torch.nn.Parameter]) -> dict[str, float]:
        """Populate .grad of every trainable parameter reachable from the losses (accumulating like
        `loss.backward()`), combining the tasks as the method prescribes. `shared` are the trainable
        parameters shared by all tasks; it may be empty. Returns the weight applied to each task."""

    def epoch_end(self, epoch: int, mean_losses: dict[str, float]) -> None:
        """Called after training epoch `epoch` (0-based) with each task's epoch-mean raw loss."""

    def in_task_order(self, values: Mapping[str, object]) -> list:
        if set(values) != set(self.tasks):
            raise ValueError(f"expected one value per task {list(self.tasks)}, got {sorted(values)}")
        return [values[task] for task in self.tasks]

    def stack_losses(self, losses: Mapping[str, Tensor]) -> Tensor:
        return torch.stack(self.in_task_order(losses))

    def per_task(self, weights: Tensor) -> dict[str, float]:
        return dict(zip(self.tasks, weights.detach().float().cpu().tolist()))


class LossWeighting(Weighting):
    """A method that combines the task losses into one scalar. Its backward is a plain backward of
    that scalar: it needs no `shared` parameters, and DDP's hooks, where enabled, average its
    gradients as for any loss."""

    @abc.abstractmethod
    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        """The scalar to minimise and the per-task weights to report, from the losses in task order."""

    def backward(self, losses: dict[str, Tensor], shared: Sequence[torch.nn.Parameter]) -> dict[str, float]:
        objective, weights = self.combine(self.stack_losses(losses))
        objective.backward()
        return self.per_task(weights)
