"""MoCo (Fernando, Shen, Liu, Chaudhury, Murugesan and Chen, "Mitigating Gradient Bias in
Multi-objective Learning: A Provably Convergent Approach", ICLR 2023).

MGDA's weights are biased when they are computed from stochastic gradients; MoCo tracks each
task's gradient across steps and moves the weights by one projected-gradient step per training
step instead of solving for them. At step k = 1, 2, ...:
    h_t = L_t g_t / (|g_t| + 1e-8)                       each task's gradient, rescaled to norm L_t
    y_t <- y_t - beta_k (y_t - h_t),   beta_k = moco_beta / k^moco_beta_sigma
    lambda <- P(lambda - gamma_k (Y Y^T + rho I) lambda),  gamma_k = moco_gamma / k^moco_gamma_sigma
    d = sum_t lambda_t y_t
where Y stacks the tracked y_t (T, values), P is the Euclidean projection onto the probability
simplex (`project_to_simplex`), and (Y Y^T + rho I) lambda is the gradient of the MGDA objective
1/2 |Y^T lambda|^2 + rho/2 |lambda|^2. y starts at zero and lambda at 1/T. `backward` reports
lambda (which sums to 1). The tracked gradients span the shared parameters only (a
representation's gradient changes size with the batch). y, lambda and k are buffers, so a
resumed run continues exactly.

Settings (WeightingConfig, LibMTL's defaults): `moco_beta` 0.5, `moco_beta_sigma` 0.5,
`moco_gamma` 0.1, `moco_gamma_sigma` 0.5, `moco_rho` 0.

The rescaling of g_t to norm L_t is not in the paper's algorithm, which tracks the raw stochastic
gradients; it is what the authors' Cityscapes code (its "raw_loss" option) and LibMTL do, and
keeps tasks whose gradients differ in scale by orders of magnitude from being reduced to
the smallest one.

Differences from LibMTL's MoCo: LibMTL updates lambda by softmax(lambda - gamma_k (Y Y^T + rho I)
lambda), which keeps every weight positive and pulls them towards 1/T; here it is the paper's
projection onto the simplex (as in the authors' NYUv2 code; their Cityscapes code, which LibMTL
follows, has the softmax), which can set a weight to zero.
The rest (the rescaling, the step sizes from k = 1, zero-started y) is LibMTL's; here the step
counter, y and lambda are checkpointed. Under DistributedDataParallel each rank tracks its own
local gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import EPS, PARAMETERS, GradientWeighting
from baselines.weighting.registry import WEIGHTINGS


def project_to_simplex(values: Tensor) -> Tensor:
    """The Euclidean projection of a vector onto {x : x >= 0, sum x = 1}: x = max(v - theta, 0),
    with theta found from the sorted values (Held, Wolfe and Crowder 1974; Duchi et al. 2008)."""
    ordered = values.sort(descending=True).values
    excess = ordered.cumsum(0) - 1
    counts = torch.arange(1, len(values) + 1, dtype=values.dtype, device=values.device)
    # the values that stay positive are a leading run of the sorted ones: the last index where
    # ordered_k > (sum of the first k - 1) / k (always the first, for finite input)
    inside = ordered - excess / counts > 0
    last = int(inside.nonzero().max()) if bool(inside.any()) else 0
    return (values - excess[last] / counts[last]).clamp(min=0)


@WEIGHTINGS.register("moco")
class MoCo(GradientWeighting):
    GRADIENTS = (PARAMETERS,)
    SUMMARY = "MoCo, tracked task gradients and projected-gradient MGDA weights (Fernando et al., ICLR 2023)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # sized on the first step, when the shared parameters are first seen
        self.register_buffer("tracked", torch.zeros(len(self.tasks), 0))
        self.register_buffer("lambdas", torch.full((len(self.tasks),), 1 / len(self.tasks), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        if self.tracked.shape[1] == 0:
            self.tracked = torch.zeros_like(gradients)
        elif self.tracked.shape[1] != gradients.shape[1]:
            raise ValueError(f"the shared parameters changed size: {self.tracked.shape[1]} values before, {gradients.shape[1]} now")
        self.step += 1
        k = int(self.step)
        beta = self.config.moco_beta / k**self.config.moco_beta_sigma
        gamma = self.config.moco_gamma / k**self.config.moco_gamma_sigma
        scales = losses.to(gradients.dtype) / (gradients.norm(dim=1) + EPS)
        # y <- (1 - beta) y + beta h, without a (tasks, values) temporary for h
        self.tracked.mul_(1 - beta).addcmul_(gradients.to(self.tracked.dtype), (beta * scales).unsqueeze(1).to(self.tracked.dtype))
        gram = (self.tracked @ self.tracked.T).double() + self.config.moco_rho * torch.eye(len(self.tasks), dtype=torch.float64, device=self.tracked.device)
        self.lambdas.copy_(project_to_simplex(self.lambdas - gamma * (gram @ self.lambdas)))
        return self.lambdas.to(self.tracked) @ self.tracked, self.lambdas

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance has not sized its tracked gradients yet: take the saved size.
        saved = state_dict.get(prefix + "tracked")
        if saved is not None and saved.shape != self.tracked.shape:
            self.tracked = self.tracked.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
