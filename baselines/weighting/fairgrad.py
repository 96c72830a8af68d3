"""FairGrad (Ban and Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024).

The update direction d = sum_t w_t g_t allocates progress u_t = g_t . d to the tasks; FairGrad
picks the d that maximises the alpha-fair utility sum_t u_t^(1-alpha) / (1-alpha) (sum_t log u_t
at alpha = 1) over a ball, whose optimality condition is g_t . d = w_t^(-1/alpha), i.e.
    K w = w^(-1/alpha)   (elementwise, w > 0, K = G G^T the Gram matrix of the task gradients).
alpha -> 0 favours the total progress (utilitarian), alpha = 1 is proportional fairness, the
condition of Nash-MTL (K w = 1/w, without Nash-MTL's clip), and alpha -> infinity approaches
max-min fairness. The condition is the stationarity condition of the strictly convex problem
    min_{w > 0} 1/2 w^T K w - sum_t h(w_t),  h'(w) = w^(-1/alpha)  (h concave),
solved here in float64 by damped Newton (qp.fair_weights, with its handling of a zero
gradient, weight 0, and of conflicting gradients, a floor of 1e-8 on the eigenvalues of the
gradients' correlation matrix). There is no normalisation of K and no clip: |d|^2 =
sum_t w_t^(1-1/alpha) (= T at alpha = 1).

Setting (WeightingConfig): `fairgrad_alpha`, the fairness exponent (LibMTL's default 1.0; the
paper tunes it per benchmark). No state. `backward` reports w. Balances the shared parameters'
gradients or, with `weighting.gradients=representation`, those of the cut representation (the
method needs only the Gram matrix of this step).

Differences from LibMTL's FairGrad (as the authors' code): LibMTL solves the equation with
scipy.optimize.least_squares on the residual K w - w^(-1/alpha), started at 1/T with bounds
w >= 0; here the equivalent convex problem is solved by Newton to about 1e-10 relative, which
agrees with least_squares to its own tolerance (1e-8) where the problem is well posed and stays
finite and positive where K is singular. LibMTL then runs a second full backward of
sum_t w_t L_t, so each task-specific parameter gets w_t times its task's gradient; here the
per-task gradients are reused, d is written to the shared parameters and task-specific
parameters get the gradient of sum_t L_t (as in the authors' own code, which overwrites the
shared gradients after one backward per task). LibMTL refuses representation gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.base import PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import fair_weights
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("fairgrad")
class FairGrad(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "FairGrad, alpha-fair allocation K w = w^(-1/alpha) over the task gradients (Ban and Ji, ICML 2024)"

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        gram = gram_matrix(gradients).numpy()
        weights = torch.from_numpy(fair_weights(gram, self.config.fairgrad_alpha))
        return weights.to(gradients) @ gradients, weights
