"""Geometric loss strategy (Chennupati, Sistu, Yogamani and Rawashdeh, "MultiNet++: Multi-Stream
Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019).

The objective is the geometric mean of the task losses, GLS = (prod_t L_t)^(1/T). Its gradient
is sum_t w_t grad L_t with w_t = dGLS/dL_t = GLS / (T L_t): a task whose loss is small gets a
large weight, so the tasks are pushed towards equal relative (not absolute) progress, and the
objective does not change when one loss is multiplied by a constant, except by that factor^(1/T).
There is no hyperparameter. `backward` reports w_t; all tasks are treated alike whatever their
number.

It is computed as exp(mean_t log(L_t + EPS)): the product of many losses would under- or
overflow, and the gradient GLS / (T L_t) of the exact form is 0/0 when a loss is exactly 0.
The losses must be non-negative (cross-entropy, Dice and the like).

Differences from LibMTL's GLS: LibMTL evaluates the product itself, torch.pow(prod_t L_t, 1/T),
without EPS, so a zero loss makes its gradient NaN; and it reports L_t / (T prod_s L_s) as the
weights, which is not the gradient of its objective (that is GLS / (T L_t), reported here). The
gradients are otherwise the same, up to EPS.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.base import EPS, LossWeighting
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("gls")
class GeometricLossStrategy(LossWeighting):
    SUMMARY = "GLS, the geometric mean of the task losses (Chennupati et al., CVPR Workshops 2019)"

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        shifted = losses + EPS
        objective = torch.exp(torch.log(shifted).mean())
        return objective, objective.detach() / (len(self.tasks) * shifted.detach())
