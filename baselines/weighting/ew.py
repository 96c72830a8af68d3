"""Equal weighting: the plain sum of the task losses."""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import LossWeighting


@WEIGHTINGS.register("ew")
class EqualWeighting(LossWeighting):
    SUMMARY = "EW, equal weighting: the plain sum of the task losses"

    def combine(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        return losses.sum(), torch.ones_like(losses)
