"""ExcessMTL (He, Zhou, Zhang, Yun, Xu, Zeng, Chilimbi and Zhao, "Robust Multi-Task Learning with
Excess Risks", ICML 2024).

Tasks are weighted by their excess risk, the distance of their loss from its optimum, rather than
by the loss itself, so that a task with high but irreducible loss (label noise) does not take over.
The excess risk of task t is estimated from a second-order expansion as g_t^T H_t^-1 g_t, with
H_t the diagonal AdaGrad preconditioner of the task's own gradients:
    S_t <- S_t + g_t * g_t                               (running sum of squared gradients)
    e_t = sum_j g_tj^2 / sqrt(S_tj + 1e-7)
    r_t = e_t / e_t(first step)                          (relative to the first estimate)
    w_t <- T * w_t exp(eta r_t) / sum_s w_s exp(eta r_s) (exponentiated-gradient step)
    d = sum_t w_t g_t.
The weights start at 1 (they always sum to T); on the first step every r_t is 1, so they stay 1.
`backward` reports w after this step's update (the weights d used). The accumulated squares span
the shared parameters only (a representation's gradient changes size with the batch). S, the
first estimates and w are buffers, so a resumed run continues exactly.

Setting (WeightingConfig): `excess_step`, the step size eta of the weight update (the authors'
and LibMTL's robust_step_size, 1e-2).

A task whose gradient is exactly zero has e_t = 0; its normaliser is its first positive estimate
instead, and until then its r_t is 0 (it is at an optimum: no excess risk).

Differences from LibMTL's ExcessMTL (a copy of the authors' code): the same update, with the
weights renormalised in log space (a softmax, the same numbers without overflow). LibMTL then runs
a second full backward of sum_t w_t L_t, so each task-specific parameter gets w_t times its task's
gradient; here the per-task gradients are reused, d is written to the shared parameters and
task-specific parameters get the gradient of sum_t L_t. LibMTL divides by the first step's
estimates even where they are zero (NaN); it also offers representation gradients summed over the
batch, which are not offered here. Under DistributedDataParallel each rank accumulates its own
local gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import PARAMETERS, GradientWeighting
from baselines.weighting.registry import WEIGHTINGS

ADAGRAD_EPS = 1e-7  # the authors' guard inside the square root


@WEIGHTINGS.register("excess_mtl")
class ExcessMTL(GradientWeighting):
    GRADIENTS = (PARAMETERS,)
    SUMMARY = "ExcessMTL, exponentiated-gradient weights from AdaGrad-preconditioned excess-risk estimates (He et al., ICML 2024)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # sized on the first step, when the shared parameters are first seen
        self.register_buffer("squared_sum", torch.zeros(len(self.tasks), 0))
        # each task's first positive excess-risk estimate; 0 until there is one
        self.register_buffer("first_estimates", torch.zeros(len(self.tasks), dtype=torch.float64))
        self.register_buffer("weights", torch.ones(len(self.tasks), dtype=torch.float64))

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        if self.squared_sum.shape[1] == 0:
            self.squared_sum = torch.zeros_like(gradients)
        elif self.squared_sum.shape[1] != gradients.shape[1]:
            raise ValueError(f"the shared parameters changed size: {self.squared_sum.shape[1]} values before, {gradients.shape[1]} now")
        self.squared_sum.addcmul_(gradients, gradients)
        estimates = torch.stack([self.excess_risk(gradient, squares) for gradient, squares in zip(gradients, self.squared_sum)])
        self.first_estimates.copy_(torch.where((self.first_estimates == 0) & (estimates > 0), estimates, self.first_estimates))
        ratios = torch.where(self.first_estimates > 0, estimates / self.first_estimates.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
        logits = self.weights.log() + self.config.excess_step * ratios
        self.weights.copy_(len(self.tasks) * torch.softmax(logits, dim=0))
        return self.weights.to(gradients) @ gradients, self.weights

    @staticmethod
    def excess_risk(gradient: Tensor, squares: Tensor) -> Tensor:
        """g^T diag(sqrt(S + eps))^-1 g, with one temporary of the gradient's size."""
        return torch.dot(squares.add(ADAGRAD_EPS).rsqrt_().mul_(gradient), gradient).double()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance has not sized its sums yet: take the saved size.
        saved = state_dict.get(prefix + "squared_sum")
        if saved is not None and saved.shape != self.squared_sum.shape:
            self.squared_sum = self.squared_sum.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
