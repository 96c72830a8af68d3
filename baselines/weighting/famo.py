"""Fast adaptive multitask optimisation (Liu, Liang, Liu, Stone and Liu, "FAMO: Fast Adaptive
Multitask Optimization", NeurIPS 2023).

FAMO keeps one logit xi_t per task (0 at the start) and z = softmax(xi). With D_t = L_t - m_t + eps
(m_t the minimum loss, 0 here as in the authors' code, eps = EPS), each step minimises

    sum_t z_t log D_t / c,     c = sum_t z_t / D_t (held constant),

whose gradient is sum_t (z_t / (c D_t)) grad L_t: the weights z_t / (c D_t), which sum to 1, are
what `backward` reports. After the optimiser step the trainer calls `after_step`, which
recomputes the same batch's losses with the updated model; delta_t = log D_t(before) -
log D_t(after) is how much task t's log loss fell, and the logits take one Adam step on
J^T delta = z * (delta - z . delta) (J the softmax's Jacobian), so a task whose loss fell more
than the others' loses weight: the tasks are pushed to decrease their losses at equal rates.
Costs: one backward and, in `after_step`, one forward without gradients per step.

Hyperparameters: `famo_lr` (0.025), the logits' Adam learning rate, and `famo_weight_decay`
(1e-3), its L2 weight decay (the authors' gamma: 1e-3 for NYUv2, CelebA and QM9, 1e-2 for
Cityscapes); Adam's betas (0.9, 0.999) and eps 1e-8 are torch's defaults, which the authors use.

The logits and Adam's state (its step count and both moments) are buffers, so a resumed run
continues the same sequence of updates; the update is written out here with torch.optim.Adam's
formula, L2 decay included (weight_decay * xi added to the gradient). The logits are not
parameters: the run's optimiser must not train them. Under DistributedDataParallel delta is
averaged over the ranks before the update, so every rank keeps the same logits.

Differences from LibMTL's FAMO (and the official code, github.com/Cranial-XIX/FAMO): both keep
the logits' Adam in a torch.optim.Adam outside any state_dict, so a resumed run restarts it (and
the logits, in LibMTL) from scratch; here they are restored. LibMTL reports no weights. The
official code's `max_norm` clipping of the shared gradients is not reproduced: in its
experiments' trainer (methods/weight_methods.py) the clip runs before `loss.backward()` and so
has no effect; `optim.grad_clip` is the run's own clipping. The update is otherwise the same,
with m_t = 0 as in both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import EPS, LossWeighting
from baselines.weighting.registry import WEIGHTINGS

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@WEIGHTINGS.register("famo")
class FastAdaptiveMultitask(LossWeighting):
    SUMMARY = "FAMO, task logits adapted so that every loss falls at the same rate (Liu et al., NeurIPS 2023)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.register_buffer("logits", torch.zeros(len(self.tasks)))
        self.register_buffer("adam_step", torch.zeros((), dtype=torch.long))
        self.register_buffer("adam_first_moment", torch.zeros(len(self.tasks)))
        self.register_buffer("adam_second_moment", torch.zeros(len(self.tasks)))
        # this step's losses, for `after_step`; never needed across a checkpoint, which falls
        # between steps
        self.losses_before: Tensor | None = None

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        self.losses_before = losses.detach()
        z = torch.softmax(self.logits, dim=0)
        shifted = losses + EPS
        c = (z / shifted.detach()).sum()
        return (z * torch.log(shifted)).sum() / c, z / (c * shifted.detach())

    def after_step(self, losses_again: Callable[[], dict[str, Tensor]]) -> None:
        if self.losses_before is None:
            return
        before, self.losses_before = self.losses_before, None
        after = self.stack_losses(losses_again()).detach()
        delta = (torch.log(before + EPS) - torch.log(after + EPS)).to(self.logits.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(delta)
            delta /= dist.get_world_size()
        z = torch.softmax(self.logits, dim=0)
        self.adam_update(z * (delta - (z * delta).sum()))

    @torch.no_grad()
    def adam_update(self, gradient: Tensor) -> None:
        """One step of torch.optim.Adam (betas ADAM_BETAS, eps ADAM_EPS, lr famo_lr, L2 weight
        decay famo_weight_decay) on the logits, its state in the buffers."""
        beta1, beta2 = ADAM_BETAS
        gradient = gradient + self.config.famo_weight_decay * self.logits
        self.adam_step += 1
        self.adam_first_moment.lerp_(gradient, 1 - beta1)
        self.adam_second_moment.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        # on the device (reading the step count would wait for it), in float64 as torch's Python
        # floats: in float32, 1 - 0.999 is off by 1e-5
        step = self.adam_step.double()
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        denominator = (self.adam_second_moment.sqrt() / bias_correction2.sqrt()).to(self.logits.dtype) + ADAM_EPS
        step_size = (self.config.famo_lr / bias_correction1).to(self.logits.dtype)
        self.logits.sub_(step_size * self.adam_first_moment / denominator)
