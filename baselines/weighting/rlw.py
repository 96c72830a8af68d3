"""Random loss weighting (Lin, Ye, Xu, Shi and Zhang, "Reasonable Effectiveness of Random Weighting:
A Litmus Test for Multi-Task Learning", TMLR 2022).

At every step the weights are drawn afresh, w = softmax(e) with e ~ N(0, I_T), and the
objective is sum_t w_t L_t. The weights sum to 1, so the objective is on the scale of the mean
task loss, not of the sum (EW's). There is no hyperparameter; `backward` reports the drawn w.
The paper also tries other distributions (uniform, Bernoulli, Dirichlet, ...) for the weights;
the standard normal through a softmax is its default and LibMTL's, and the only one here.

The draw comes from torch's global CPU generator, which the trainer seeds: runs are reproducible,
the draw does not depend on the device, and ranks seeded alike draw alike.

Differences from LibMTL's RLW: none (LibMTL draws torch.randn(T) on the CPU too).
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.base import LossWeighting
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(LossWeighting):
    SUMMARY = "RLW, random loss weighting: softmax of a standard normal draw per step (Lin et al., TMLR 2022)"

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(torch.randn(len(self.tasks)), dim=0).to(losses.device)
        return (weights * losses).sum(), weights
