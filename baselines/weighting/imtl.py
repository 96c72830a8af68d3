"""Impartial multi-task learning (Liu, Li, Kuang, Xue, Chen, Yang, Liao and Zhang, "Towards
Impartial Multi-task Learning", ICLR 2021): the hybrid IMTL, gradient balance (IMTL-G) on top of
loss balance (IMTL-L), as LibMTL combines them.

IMTL-L: one learnable scale s_t per task (initialised to 0) and the task objective
e^{s_t} L_t - s_t, minimised over s_t at e^{s_t} L_t = 1 so that the scaled losses stay
comparable. The scales are parameters of this method, trained by the run's optimiser (like UW's):
they get the gradient of sum_t (e^{s_t} L_t - s_t), e^{s_t} L_t - 1, and task-specific parameters
get the gradient of that sum.

IMTL-G, on the shared parameters (or the cut representation): with g_t the gradient of task t's
scaled objective and u_t = g_t / |g_t|, the update d = sum_t alpha_t g_t, sum_t alpha_t = 1, has
equal projections on every task's direction: d . u_t is the same for all t. In the paper's closed
form alpha_{2..T} = g_1 U^T (D U^T)^{-1} with rows D_t = g_1 - g_t and U_t = u_1 - u_t; in the
Gram matrix K = G G^T that is alpha = K^{-1} n / (1^T K^{-1} n) with n_t = |g_t| (K alpha is
proportional to n, i.e. d . g_t proportional to |g_t|). It is computed from K alone as
alpha = K^+ n / (1^T K^+ n), with the pseudo-inverse K^+ over K's numerical rank: the
generalisation of Quinton and Rey (2024, torchjd's IMTLG), equal to the paper's whenever the
gradients are linearly independent and defined when they are not. A zero gradient gets weight 0
(K^+ n has no component on it); identical gradients get 1/T each; if every gradient is zero, or
1^T K^+ n vanishes, the weights are 0. `backward` reports alpha_t e^{s_t}, the weight on each
task's raw loss gradient in the shared update.

No hyperparameters: the scales start at 0 (every e^{s_t} = 1) and the numerical rank counts the
eigenvalues of K above max eigenvalue x T x the gradients' machine epsilon.

Differences from LibMTL's IMTL:
- alpha comes from the pseudo-inverse of the Gram matrix instead of torch.inverse(D U^T), which
  is singular (inf/NaN weights, or an error) for linearly dependent, identical or zero gradients;
  no unit-gradient or difference matrices of the gradients' size are formed.
- LibMTL reports alpha; here alpha_t e^{s_t}. With nothing shared, the weights are e^{s_t}.
- With the representation (the paper's own setting: IMTL-G on the shared feature's gradients),
  the inner products are those of the full flattened gradients; LibMTL sums them over the batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import combine, kept_eigenpairs
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import PARAMETERS, REPRESENTATION


@WEIGHTINGS.register("imtl")
class ImpartialMTL(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "IMTL, learned loss scales (IMTL-L) and equal-projection gradient weights (IMTL-G) (Liu et al., ICLR 2021)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.loss_scales = torch.nn.Parameter(torch.zeros(len(self.tasks)))
        self._factors = torch.ones(len(self.tasks))

    def backward(self, losses, shared, representation=None) -> dict[str, float]:
        ordered = self.in_task_order(losses)
        factors = self.loss_scales.exp()
        self._factors = factors.detach()
        scaled = {task: factor * loss - scale for task, loss, factor, scale in zip(self.tasks, ordered, factors, self.loss_scales)}
        weights = super().backward(scaled, shared, representation)
        if self.source == PARAMETERS and not shared:  # the base's plain backward of the sum
            return self.per_task(self._factors)
        return weights

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        alpha = impartial_weights(gram_matrix(gradients).numpy(), torch.finfo(gradients.dtype).eps)
        direction, alpha = combine(alpha, gradients)
        return direction, alpha * self._factors.double().cpu()


def impartial_weights(gram: np.ndarray, eps: float) -> np.ndarray:
    """alpha = K^+ n / (1^T K^+ n), n_t = sqrt(K_tt): the IMTL-G weights from the Gram matrix."""
    norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
    values, vectors = kept_eigenpairs(gram, eps)
    projected = vectors @ ((vectors.T @ norms) / values)
    total = projected.sum()
    if not values.size or abs(total) <= 1e-12 * np.abs(projected).sum():
        return np.zeros(len(gram))
    return projected / total
