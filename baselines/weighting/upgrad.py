"""Unconflicting projection of gradients (Quinton and Rey, "Jacobian Descent for Multi-Objective
Optimization", arXiv 2024; the torchjd library's UPGrad aggregator).

Each task gradient g_i, weighted by the preference 1/T, is projected onto the dual cone of all
task gradients {d : g_t . d >= 0 for every t}, and the projections are added. In weights: with
the Gram matrix K = G G^T normalised by its trace and regularised, K' = K / tr(K) + reg_eps I,
the projection of (1/T) g_i is sum_t v_it g_t with v_i = argmin_{v >= e_i / T} v^T K' v (the
paper's Proposition 1); the update is sum_t w_t g_t with w = sum_i v_i, which `backward` reports.
It is the mean of the gradients when they do not conflict (v_i = e_i / T), and never conflicts
with any task: g_t . d >= 0 for every t (up to the regularisation).

Hyperparameters (torchjd's and LibMTL's defaults): `upgrad_norm_eps` = 1e-4, below which tr(K)
(the squared Frobenius norm of G) counts as zero, K' = reg_eps I and the weights are the mean's
1/T; `upgrad_reg_eps` = 1e-4, the ridge that makes K' positive definite (so each v_i is unique).
The trace normalisation makes the ridge relative to the gradients' size.

The T small QPs are solved exactly by qp.py's active-set enumeration (float64), so this method
takes at most qp.MAX_VARIABLES tasks.

Differences from LibMTL's UPGrad:
- The QPs are solved by enumeration here, not quadprog (through qpsolvers); with reg_eps > 0
  the minimiser is unique, so the weights agree up to rounding. With reg_eps = 0 and a singular
  Gram matrix quadprog can fail where this solver returns a minimiser.
- LibMTL refuses the representation's gradients; here `weighting.gradients=representation`
  applies UPGrad to the full flattened gradient of the cut representation (nothing is kept
  between steps, so its size may change with the batch).
- The Gram matrix is formed once in the gradients' dtype on their device (LibMTL: the same
  product), then normalised and solved in float64.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import check_task_count, combine, solve_qp
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import PARAMETERS, REPRESENTATION


@WEIGHTINGS.register("upgrad")
class UPGrad(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "UPGrad, sum of the task gradients projected onto their dual cone (Quinton & Rey, arXiv 2024)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        check_task_count(len(self.tasks), "upgrad")

    def upgrad_weights(self, gram: np.ndarray) -> np.ndarray:
        count = len(gram)
        trace = np.trace(gram)
        normalised = gram / trace if trace >= self.config.upgrad_norm_eps else np.zeros_like(gram)
        regularised = normalised + self.config.upgrad_reg_eps * np.eye(count)
        preferences = np.eye(count) / count
        return sum(solve_qp(regularised, lower=preference) for preference in preferences)

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        return combine(self.upgrad_weights(gram_matrix(gradients).numpy()), gradients)
