"""Dual-balancing multi-task learning (Lin et al., 2023), as in the EndoARSS release (LibMTL's DB_MTL).

Loss-scale balancing: every task contributes log(L_t + eps) instead of L_t. Gradient-magnitude
balancing, on the shared parameters only: g_t = grad of log(L_t + eps) per task, an exponential
moving average m_t <- beta m_t + (1 - beta) g_t, each m_t rescaled to the largest norm among the
tasks, alpha_t = max_s ||m_s|| / (||m_t|| + eps), and the shared gradient sum_t alpha_t m_t
(alpha is what `backward` reports). Task-specific parameters get the gradient of
sum_t log(L_t + eps), so each head sees only its own task's log loss.

The per-task gradients come from the shared path (gradients.py): one backward pass per task of
log(L_t + eps) itself. A trainable tensor outside `shared` that several tasks reach gets the sum
of their gradients, as from a backward of sum_t log(L_t + eps). The averages span the shared
parameters only: a representation's gradient changes size with the batch.

The averages start at zero with no bias correction, as LibMTL writes it (m <- g + beta (m - g)),
so the first step's m_t is (1 - beta) g_t; since every m_t is rescaled to the largest norm,
this only scales the early shared gradients down, which an adaptive optimiser largely absorbs.

Under DistributedDataParallel each rank's averages and alpha come from its own local gradients,
so the result is the mean over ranks of each rank's balanced gradient, not the balance of the
global-batch gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import EPS, PARAMETERS, GradientWeighting
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("db_mtl")
class DualBalancing(GradientWeighting):
    GRADIENTS = (PARAMETERS,)
    SUMMARY = "DB-MTL, dual balancing of log losses and gradient magnitudes (Lin et al., 2023; the EndoARSS release)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # One row per task over the flattened shared parameters; sized on the first step, when
        # the shared parameters are first seen.
        self.register_buffer("gradient_ema", torch.zeros(len(self.tasks), 0))

    def task_objective(self, loss: Tensor) -> Tensor:
        return torch.log(loss + EPS)

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        if self.gradient_ema.shape[1] == 0:
            self.gradient_ema = torch.zeros_like(gradients)
        elif self.gradient_ema.shape[1] != gradients.shape[1]:
            raise ValueError(f"the shared parameters changed size: {self.gradient_ema.shape[1]} values before, {gradients.shape[1]} now")
        self.gradient_ema.lerp_(gradients.to(self.gradient_ema.dtype), 1 - self.config.beta)
        norms = self.gradient_ema.norm(dim=1)
        alpha = norms.max() / (norms + EPS)
        return alpha @ self.gradient_ema, alpha

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance has not sized its averages yet: take the saved size.
        saved = state_dict.get(prefix + "gradient_ema")
        if saved is not None and saved.shape != self.gradient_ema.shape:
            self.gradient_ema = self.gradient_ema.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
