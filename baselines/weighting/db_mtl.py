"""Dual-balancing multi-task learning (Lin et al., 2023), as in the EndoARSS release (LibMTL's DB_MTL).

Loss-scale balancing: every task contributes log(L_t + eps) instead of L_t. Gradient-magnitude
balancing, on the shared parameters only: g_t = grad of log(L_t + eps) per task, an exponential
moving average m_t <- beta m_t + (1 - beta) g_t, each m_t rescaled to the largest norm among the
tasks, alpha_t = max_s ||m_s|| / (||m_t|| + eps), and the shared gradient sum_t alpha_t m_t
(alpha is what `backward` reports). Task-specific parameters get the gradient of
sum_t log(L_t + eps), so each head sees only its own task's log loss.

The averages start at zero with no bias correction, as LibMTL writes it (m <- g + beta (m - g)),
so the first step's m_t is (1 - beta) g_t; since every m_t is rescaled to the largest norm,
this only scales the early shared gradients down, which an adaptive optimiser largely absorbs.

Under DistributedDataParallel this does not rely on DDP's hooks: the per-task gradients come from
torch.autograd.grad, which the hooks do not see, and the shared .grad is written by hand. The
trainer must average the gradients over the ranks itself after `backward`. Each rank's averages
and alpha then come from its own local gradients, so the result is the mean over ranks of each
rank's balanced gradient, not the balance of the global-batch gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import EPS, Weighting


@WEIGHTINGS.register("db_mtl")
class DualBalancing(Weighting):
    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # One row per task over the flattened shared parameters; sized on the first step, when
        # the shared parameters are first seen.
        self.register_buffer("gradient_ema", torch.zeros(len(self.tasks), 0))

    def backward(self, losses: dict[str, Tensor], shared: Sequence[torch.nn.Parameter]) -> dict[str, float]:
        log_losses = torch.log(self.stack_losses(losses) + EPS)
        shared = list(shared)
        if not shared:
            log_losses.sum().backward()
            return self.per_task(torch.ones_like(log_losses))

        task_gradients = torch.stack([
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(log_loss, shared, retain_graph=True, materialize_grads=True)])
            for log_loss in log_losses
        ])
        alpha, shared_gradient = self.balance(task_gradients)

        # A normal backward gives the task-specific parameters their gradients; the shared
        # parameters' .grad from it is replaced by the balanced one.
        accumulated = [p.grad for p in shared]
        for p in shared:
            p.grad = None
        log_losses.sum().backward()
        for p, before, gradient in zip(shared, accumulated, shared_gradient.split([p.numel() for p in shared])):
            gradient = gradient.view_as(p).to(p.dtype)
            p.grad = gradient if before is None else before + gradient
        return self.per_task(alpha)

    def balance(self, task_gradients: Tensor) -> tuple[Tensor, Tensor]:
        """alpha and the shared gradient from this step's per-task gradients (tasks x parameters)."""
        if self.gradient_ema.shape[1] == 0:
            self.gradient_ema = torch.zeros_like(task_gradients)
        elif self.gradient_ema.shape != task_gradients.shape:
            raise ValueError(
                f"the shared parameters changed size: {self.gradient_ema.shape[1]} values before, {task_gradients.shape[1]} now"
            )
        self.gradient_ema.lerp_(task_gradients.to(self.gradient_ema.dtype), 1 - self.config.beta)
        norms = self.gradient_ema.norm(dim=1)
        alpha = norms.max() / (norms + EPS)
        return alpha, alpha @ self.gradient_ema

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance has not sized its averages yet: take the saved size.
        saved = state_dict.get(prefix + "gradient_ema")
        if saved is not None and saved.shape != self.gradient_ema.shape:
            self.gradient_ema = self.gradient_ema.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
