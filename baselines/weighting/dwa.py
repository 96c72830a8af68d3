"""Dynamic weight average (Liu, Johns and Davison, CVPR 2019).

In epoch e >= 2 task t has weight w_t = T * softmax_t(r_t / temperature), r_t = L_t(e-1) / L_t(e-2),
from the epoch-mean training losses (T tasks, so the weights sum to T); in epochs 0 and 1 every
weight is 1. The weights are fixed for a whole epoch, so they are computed once in `epoch_end`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import LossWeighting


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(LossWeighting):
    SUMMARY = "DWA, dynamic weight average from the epoch loss ratios (Liu et al., CVPR 2019)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.register_buffer("weights", torch.ones(len(self.tasks)))
        self.register_buffer("previous_epoch_losses", torch.zeros(len(self.tasks)))

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        return (self.weights * losses).sum(), self.weights

    def epoch_end(self, epoch: int, mean_losses: dict[str, float]) -> None:
        epoch_losses = torch.tensor(self.in_task_order(mean_losses), dtype=self.weights.dtype, device=self.weights.device)
        if epoch >= 1:
            ratios = epoch_losses / self.previous_epoch_losses
            self.weights.copy_(len(self.tasks) * torch.softmax(ratios / self.config.temperature, dim=0))
        self.previous_epoch_losses.copy_(epoch_losses)
