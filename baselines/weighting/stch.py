"""Smooth Tchebycheff scalarisation (Lin et al., ICML 2024), as in the EndoARSS release.

During the first `warmup_epochs` epochs the objective is sum_t log L_t. The epoch-mean losses of
the last warm-up epoch (given to `epoch_end`) become the nadir z; from then on the objective is
mu * log sum_t exp(log(L_t / z_t) / mu), a smooth maximum of the log loss ratios that tends to
max_t log(L_t / z_t) as mu -> 0. Its gradient is sum_t p_t grad log L_t with p = softmax_t(log(L_t /
z_t) / mu); p (1 for every task during the warm-up) is what `backward` reports.

Differences from the release (LibMTL's STCH): there the warm-up lasts one epoch longer (it is
still warming up in the epoch whose index equals warmup_epoch, and its nadir is that epoch's
mean, so its warmup_epoch=4 is warmup_epochs=5 here), the smooth maximum is multiplied by the
number of tasks (`scale_by_task_count`, which scales the gradient and the reported weights),
and its log guard is 1e-20 rather than EPS. The release's objective also omits the max it
subtracts for stability, a constant that changes its printed value but not its gradient. The
nadir comes from the trainer's epoch means, so no accumulator is needed here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import EPS, LossWeighting


@WEIGHTINGS.register("stch")
class SmoothTchebycheff(LossWeighting):
    SUMMARY = "STCH, smooth Tchebycheff scalarisation of log loss ratios (Lin et al., ICML 2024)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # NaN until the warm-up ends: the nadir doubles as the phase flag.
        self.register_buffer("nadir", torch.full((len(self.tasks),), float("nan")))

    @property
    def warming_up(self) -> bool:
        return bool(self.nadir.isnan().any())

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        log_losses = torch.log(losses + EPS)
        if self.warming_up:
            return log_losses.sum(), torch.ones_like(losses)
        scaled = (log_losses - torch.log(self.nadir.to(losses.dtype))) / self.config.mu
        factor = len(self.tasks) if self.config.scale_by_task_count else 1
        # logsumexp subtracts the max before exponentiating.
        return factor * self.config.mu * torch.logsumexp(scaled, dim=0), factor * torch.softmax(scaled.detach(), dim=0)

    def epoch_end(self, epoch: int, mean_losses: dict[str, float]) -> None:
        if epoch == self.config.warmup_epochs - 1:
            self.nadir.copy_(torch.tensor(self.in_task_order(mean_losses), dtype=self.nadir.dtype))
