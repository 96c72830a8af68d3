"""Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik and Fetaya, "Multi-Task Learning
as a Bargaining Game", ICML 2022).

The tasks bargain over the update direction d = sum_t alpha_t g_t. The Nash bargaining solution
is the direction whose weights alpha > 0 satisfy K alpha = 1 / alpha (elementwise), K = G G^T the
Gram matrix of the task gradients: every task gets alpha_t (K alpha)_t = alpha_t g_t . d = 1, so
its share of the progress is equal in the log-utility sense, and |d|^2 = alpha^T K alpha = T
(T tasks) whatever the gradients' scale. That condition is the stationarity condition of the
strictly convex problem
    min_{alpha > 0} 1/2 alpha^T K alpha - sum_t log alpha_t,
which is solved here in float64 by damped Newton (`fair_weights`, shared with FairGrad, whose
alpha = 1 case this is). K is first divided by its Frobenius norm n, as the authors do, and the
solution of the normalised problem is multiplied by n^(-1/2): so alpha solves the unnormalised
condition, as the authors' solver does (its constraints, alpha_t n (K/n alpha)_t >= 1, undo the
normalisation; only its conditioning benefits). Then, as the authors do, d is clipped to norm
`nash_max_norm` (d * min(1, max_norm / (|d| + 1e-6)), torch.nn.utils.clip_grad_norm_'s rule);
since |d| = sqrt(T), with the default 1 it fires whenever two or more tasks share an improving
direction.

Degenerate cases: a task with an exactly zero gradient has no finite weight (any alpha_t gives
the same d); it gets weight 0 and the others are solved without it. Identical gradients make K
singular, which the problem tolerates; gradients with no common improving direction (exactly
opposite ones) have no solution, so the eigenvalues of the gradients' correlation matrix below
1e-8 are raised to 1e-8 (which also absorbs float32 rounding in K, and leaves a well-posed K as
it is): the weights are then large but finite and d is about zero.

Settings (WeightingConfig): `nash_update_every` (authors: 1), solve every that many steps and
reuse the last weights in between; `nash_max_norm` (authors: 1.0; 0 turns the clip off). The
weights and the step counter are buffers, so a resumed run continues the cycle. `backward`
reports alpha. Balances the shared parameters' gradients (the authors' choice) or, with
`weighting.gradients=representation`, those of the cut representation, where the clip then
bounds the representation's gradient.

Differences from LibMTL's Nash_MTL (a copy of the authors' code): the weights are the exact
solution of K alpha = 1/alpha (to about 1e-10 relative), not the result of at most 20 sequential
convex approximations solved by cvxpy/ECOS and warm-started from the last step's weights (which
approach the same point, stopping when the weights change by less than 1e-6, and fall back to
the previous weights when ECOS fails). LibMTL then runs a second full backward of sum_t alpha_t
L_t, so each task-specific parameter gets alpha_t times its task's gradient; here the per-task
gradients are reused, d is written to the shared parameters and task-specific parameters get the
gradient of sum_t L_t. On the steps between solves LibMTL skips the per-task gradients (one
backward of sum_t alpha_t L_t); here they are still computed, so the saving of nash_update_every
is only the (cheap) solve. LibMTL refuses representation gradients. All-zero gradients give NaN
there, and a zero or exactly opposite gradient an infeasible problem (the previous weights are
kept). Under DistributedDataParallel each rank solves for its own local gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import fair_weights
from baselines.weighting.registry import WEIGHTINGS

CLIP_GUARD = 1e-6  # torch.nn.utils.clip_grad_norm_'s


def clip_norm(direction: Tensor, max_norm: float) -> Tensor:
    """torch.nn.utils.clip_grad_norm_ on one vector; max_norm 0: no clip."""
    if max_norm <= 0:
        return direction
    return direction * (max_norm / (direction.norm() + CLIP_GUARD)).clamp(max=1.0)


@WEIGHTINGS.register("nash_mtl")
class NashMTL(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "Nash-MTL, the Nash bargaining solution K alpha = 1/alpha over the task gradients (Navon et al., ICML 2022)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.register_buffer("weights", torch.ones(len(self.tasks), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        if int(self.step) % self.config.nash_update_every == 0:
            gram = gram_matrix(gradients).numpy()
            self.weights.copy_(torch.from_numpy(fair_weights(gram, 1.0)))
        self.step += 1
        return clip_norm(self.weights.to(gradients) @ gradients, self.config.nash_max_norm), self.weights
