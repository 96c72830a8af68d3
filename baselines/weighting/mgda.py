"""Multiple-gradient descent (Sener and Koltun, "Multi-Task Learning as Multi-Objective
Optimization", NeurIPS 2018), with MGDA-UB when the representation is balanced.

The shared update is the min-norm point of the convex hull of the (normalised) task gradients:
with g~_t = g_t / n_t and K~ its Gram matrix (K~_st = K_st / (n_s n_t), K = G G^T), the simplex
weights lambda = argmin_{lambda >= 0, sum lambda = 1} lambda^T K~ lambda give the direction
d = sum_t lambda_t g~_t = sum_t w_t g_t with w_t = lambda_t / n_t. d is a descent direction for
every task (g~_s . d >= |d|^2 for every s), and it is zero exactly when some convex combination of
the gradients vanishes (a Pareto-stationary point). `backward` reports w, the weight on each
task's raw gradient (lambda itself when nothing is normalised).

With `weighting.gradients=representation` the gradients are those of the cut shared
representation (the whole batch's features, flattened): the paper's MGDA-UB, which minimises an
upper bound of the parameters' min-norm problem and saves the per-task passes through the encoder.

Hyperparameter: `mgda_normalisation` (default none, the paper's algorithm): n_t = 1 (none), the
gradient norm |g_t| (l2), the loss L_t (loss) or L_t |g_t| (loss+), as in the authors' code and
LibMTL's mgda_gn (the authors' sample configuration uses loss+; their code calls normalisation
optional and outside the paper). A normaliser that is not positive (a zero gradient or loss)
is replaced by 1, leaving that task's gradient as it is.

The weights come from the exact solver in qp.py (active-set enumeration in float64 on K~), so
this method takes at most qp.MAX_VARIABLES tasks. When the minimiser is not unique (linearly
dependent gradients) the solver's fixed order picks one: identical or zero gradients get the
equal weights 1/T.

Differences from LibMTL's MGDA:
- LibMTL solves with MinNormSolver (the authors' Frank-Wolfe: an initial best pair, clipped to
  [0.001, 0.999], then at most 250 iterations, stopping below a change of 1e-5); here the QP is
  solved exactly, so two tasks can get (1, 0) where LibMTL gives (0.999, 0.001).
- MGDA-UB: LibMTL sums the representation's gradient over the batch before the solve (each
  sample's feature gradients added into one feature-sized vector); here, as in Sener and Koltun's
  code, the inner products are those of the full flattened gradients (batch x features).
- LibMTL applies the simplex weights to the normalised gradients of the shared parameters but to
  the raw gradients of the representation (as the authors' code does in both cases, scaling the
  raw losses); here the direction is the min-norm point of the normalised gradients on both
  paths, which is what keeps it a common descent direction.
- LibMTL reports lambda; here w = lambda / n (the same with no normalisation).
- A zero normaliser becomes 1 (LibMTL divides by it); one task is allowed (LibMTL's pair search
  finds no pair). Task-specific parameters get the gradient of the plain sum of the task losses,
  as in LibMTL (the authors' code scales them by lambda too).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import check_task_count, combine, min_norm_weights
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import PARAMETERS, REPRESENTATION


@WEIGHTINGS.register("mgda")
class MGDA(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "MGDA, min-norm point of the convex hull of the task gradients; MGDA-UB on the representation (Sener & Koltun, NeurIPS 2018)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        check_task_count(len(self.tasks), "mgda")

    def normalisers(self, gram: np.ndarray, losses: Tensor) -> np.ndarray:
        norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
        loss_values = losses.detach().double().cpu().numpy()
        kind = self.config.mgda_normalisation
        if kind == "none":
            return np.ones_like(norms)
        if kind == "l2":
            scales = norms
        elif kind == "loss":
            scales = loss_values
        elif kind == "loss+":
            scales = loss_values * norms
        else:
            raise ValueError(f"unknown MGDA gradient normalisation {kind!r}")
        return np.where(scales > 0, scales, 1.0)

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        gram = gram_matrix(gradients).numpy()
        scales = self.normalisers(gram, losses)
        simplex = min_norm_weights(gram / np.outer(scales, scales))
        return combine(simplex / scales, gradients)
