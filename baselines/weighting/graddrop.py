"""Gradient sign dropout, GradDrop (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai and Anguelov,
"Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020).

A dropout layer on the gradients that reach the shared representation A, following Algorithm 1 of
the paper (its batch-separated form, which LibMTL's GradDrop also implements):

1. For each task i, G_i = sum over the batch of sgn(A) * dL_i/dA: one value per feature position
   (the sign of the input to the layers that consume A decides which way a gradient moves their
   weights, and the batch sum is what those weights see).
2. Positive sign purity per position, P = (1 + sum_i G_i / sum_i |G_i|) / 2, in [0, 1].
3. One uniform draw U per position (torch.rand_like, torch's global generator).
   Mask M_i = [P > U] * [G_i > 0] + [P < U] * [G_i < 0]: with probability P the positive-signed
   tasks pass at that position, otherwise the negative-signed ones (f(P) = P, the paper's usual
   choice). A position where G_i = 0 passes nothing from task i.
4. The gradient sent into the encoder is sum_i (leak + (1 - leak) M_i) * dL_i/dA, the mask shared
   by every example of the batch.

Hyperparameter: `weighting.graddrop_leak` (default 0.0: pure GradDrop, the paper's main setting
and LibMTL's default), the share of each task's gradient that passes whatever its sign.

What `backward` reports per task: the share of its squared gradient norm that passed,
sum (leak + (1 - leak) M_i) (dL_i/dA)^2 / sum (dL_i/dA)^2, in [leak, 1] (1 for a zero gradient).

Gradients: the representation's only (`weighting.gradients` auto or representation), as the paper
applies it to activations, so the architecture must cut its representation (hps). The heads'
parameters get the sum of the task gradients, unmasked. The representation's batch is its first
dimension; called without one (aggregate on its own), every value is its own position with a
positive input.

Differences from LibMTL's GradDrop: none in the rule (LibMTL also multiplies by sgn(A), sums over
the batch and broadcasts the mask over it). LibMTL adds 1e-7 to the purity's denominator; here a
position with sum_i |G_i| = 0 has P = 1/2 instead (no task passes there anyway). LibMTL's backward
reports no weights; here the kept shares above.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.base import REPRESENTATION, GradientWeighting
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("graddrop")
class GradDrop(GradientWeighting):
    GRADIENTS = (REPRESENTATION,)
    SUMMARY = "GradDrop, gradient sign dropout on the shared representation (Chen et al., NeurIPS 2020)"

    _features: Tensor | None = None  # the representation of the step in progress: its batch and signs

    def backward(self, losses, shared, representation=None) -> dict[str, float]:
        self._features = None if representation is None else representation.features
        try:
            return super().backward(losses, shared, representation)
        finally:
            self._features = None

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        count = gradients.shape[0]
        features = self._features
        if features is None or features.dim() == 0:
            per_example = gradients.view(count, 1, -1)
            signed = per_example.sum(dim=1)
        else:
            per_example = gradients.view(count, features.shape[0], -1)
            signs = features.detach().sign().reshape(features.shape[0], -1).to(gradients.dtype)
            signed = (per_example * signs).sum(dim=1)
        total = signed.abs().sum(dim=0)
        purity = 0.5 * (1 + signed.sum(dim=0) / torch.where(total > 0, total, 1))
        draw = torch.rand_like(purity)
        keep = ((purity > draw) & (signed > 0)) | ((purity < draw) & (signed < 0))
        leak = self.config.graddrop_leak
        factors = leak + (1 - leak) * keep.to(gradients.dtype)  # (tasks, positions)
        direction = (per_example * factors.unsqueeze(1)).sum(dim=0).reshape(-1)
        squares = per_example.square().sum(dim=1)
        norms = squares.sum(dim=1)
        kept = (squares * factors).sum(dim=1)
        weights = torch.where(norms > 0, kept / torch.where(norms > 0, norms, 1), 1)
        return direction, weights
