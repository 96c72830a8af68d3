"""Uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018).

One learnable log-variance s_t = log(sigma_t^2) per task, initialised to 0 (every weight 1), and
the objective sum_t exp(-s_t) L_t + s_t: the paper's form for classification losses, used here
for every task. Its regression form (1/2) exp(-s_t) L_t + (1/2) s_t, which LibMTL and the
EndoARSS release use with s_t initialised to -0.5, is the same objective halved, so only the
initialisation and the gradient scale differ. The optimum is s_t = log L_t (dJ/ds_t =
1 - exp(-s_t) L_t); the reported weight is exp(-s_t).
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import LossWeighting


@WEIGHTINGS.register("uw")
class UncertaintyWeighting(LossWeighting):
    SUMMARY = "UW, uncertainty weighting with a learned log-variance per task (Kendall et al., CVPR 2018)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.log_variances = torch.nn.Parameter(torch.zeros(len(self.tasks)))

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        precisions = torch.exp(-self.log_variances)
        return (precisions * losses + self.log_variances).sum(), precisions
