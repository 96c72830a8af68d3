"""The interface every weighting method implements, and the two shapes most methods take.

The trainer calls `backward(losses, shared, representation)` once per step instead of
`loss.backward()`, `after_step(losses_again)` after the optimiser step, and
`epoch_end(epoch, mean_losses)` after each training epoch. A method is a Module so that its
learnable parameters (UW, GradNorm) reach the optimiser and all of its state (gradient EMAs,
loss history, nadir) is saved and restored with `state_dict()` / `load_state_dict()`.

- LossWeighting: the method combines the task losses into one scalar and runs one plain backward.
- GradientWeighting: the method combines per-task gradients. They come from the shared path in
  gradients.py, of the shared parameters or (where the method and the architecture allow it, see
  GRADIENTS and `weighting.gradients`) of the cut shared representation. Task-specific parameters
  get the gradient of the sum of the task objectives, as in LibMTL.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.models.representation import CutRepresentation
from baselines.weighting.gradients import task_gradients, write_gradient
from baselines.weighting.sources import AUTO, PARAMETERS, REPRESENTATION
from mtlbench.errors import InputError

# Keeps log(L) finite when a loss underflows to exactly 0 (a confidently right classifier in
# fp32), and ratios finite when their denominator vanishes.
EPS = 1e-8



class Weighting(torch.nn.Module, abc.ABC):
    # What the method differentiates, in order of preference: () for the loss-combining methods,
    # else some of PARAMETERS and REPRESENTATION (configuration picks one: `gradient_source`).
    GRADIENTS: tuple[str, ...] = ()
    SUMMARY = ""  # one line for `run-baseline --list`: the method and its paper

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__()
        if not tasks:
            raise ValueError("a weighting method needs at least one task")
        self.tasks = tuple(tasks)
        self.config = config
        self.source = self.gradient_source(config)

    @classmethod
    def gradient_source(cls, config: WeightingConfig) -> str | None:
        """PARAMETERS, REPRESENTATION or None (losses only), from `weighting.gradients`; a choice
        the method cannot use is refused in one line."""
        if not cls.GRADIENTS:
            if config.gradients != AUTO:
                raise InputError("weighting.gradients", f"{config.name} weighs the task losses, not gradients: leave it at {AUTO}")
            return None
        if config.gradients == AUTO:
            return cls.GRADIENTS[0]
        if config.gradients not in cls.GRADIENTS:
            offered = " or the ".join(f"shared {source}" for source in cls.GRADIENTS)
            raise InputError("weighting.gradients", f"{config.name} balances the gradients of the {offered}, not of the shared {config.gradients}")
        return config.gradients

    @abc.abstractmethod
    def backward(
        self, losses: dict[str, Tensor], shared: Sequence[torch.nn.Parameter], representation: CutRepresentation | None = None
    ) -> dict[str, float]:
        """Populate .grad of every trainable parameter reachable from the losses (accumulating like
        `loss.backward()`), combining the tasks as the method prescribes. `shared` are the trainable
        parameters shared by all tasks (possibly none); `representation` is the model's cut
        representation when the method balances it. Returns the weight applied to each task."""

    def after_step(self, losses_again: Callable[[], dict[str, Tensor]]) -> None:
        """Called after the optimiser step; `losses_again()` recomputes this step's batch's losses
        with the updated model, without gradients (FAMO). Most methods ignore it, at no cost."""

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

    def backward(self, losses, shared, representation=None) -> dict[str, float]:
        objective, weights = self.combine(self.stack_losses(losses))
        objective.backward()
        return self.per_task(weights)


class GradientWeighting(Weighting):
    """A method that turns the per-task gradients into one update direction.

    Under DistributedDataParallel every gradient comes from torch.autograd.grad, which DDP's hooks
    do not see, and every .grad is written here: the trainer averages gradients over the ranks
    after `backward`, so each rank balances its own local gradients.
    """

    GRADIENTS = (PARAMETERS, REPRESENTATION)

    def task_objective(self, loss: Tensor) -> Tensor:
        """What each task's gradient is the gradient of (DB-MTL: its log loss)."""
        return loss

    @abc.abstractmethod
    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        """The update direction (values,) and the per-task weights to report (tasks,), from the
        per-task gradients (tasks, values) and the detached losses (tasks,), both in task order."""

    def backward(self, losses, shared, representation=None) -> dict[str, float]:
        objectives = [self.task_objective(loss) for loss in self.in_task_order(losses)]
        if self.source == REPRESENTATION:
            if representation is None:
                raise ValueError(f"{self.config.name} balances the representation's gradients: the model must cut it (cut_representation)")
            targets = [[representation.leaves[task]] for task in self.tasks]
        else:
            targets = [list(shared)] * len(self.tasks)
        if not targets[0]:  # nothing is shared: every gradient belongs to one task
            torch.stack(objectives).sum().backward()
            return self.per_task(torch.ones(len(self.tasks)))
        balanced = {id(tensor) for task_targets in targets for tensor in task_targets}
        gradients = task_gradients(objectives, targets, balanced)
        direction, weights = self.aggregate(gradients, self.stack_losses(losses).detach())
        if self.source == REPRESENTATION:
            features = representation.features
            features.backward(direction.view_as(features).to(features.dtype))
        else:
            write_gradient(shared, direction)
        return self.per_task(weights)
