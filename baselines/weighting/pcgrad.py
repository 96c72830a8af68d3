"""Projecting conflicting gradients, PCGrad (Yu, Kumar, Gupta, Levine, Hausman and Finn,
"Gradient Surgery for Multi-Task Learning", NeurIPS 2020).

Update rule. Start from g_i' = g_i for every task i. For each task i, visit the other tasks j in
a random order (a fresh order per task and per step); whenever g_i' conflicts with the ORIGINAL
g_j (g_i' . g_j < 0), remove that component: g_i' <- g_i' - (g_i' . g_j / ||g_j||^2) g_j. The
update direction is sum_i g_i' (the paper's Algorithm 1, and its authors' sum over tasks).

Every projection subtracts a multiple of an original gradient, so g_i' = sum_k C_ik g_k and the
direction is sum_k w_k g_k with w = column sums of C. The whole procedure therefore runs on the
T x T Gram matrix G = g g^T (g_i' . g_j = (C G)_ij, ||g_j||^2 = G_jj), in float64 on the CPU, and
the (T, values) gradient matrix is touched twice: once for G, once for w @ g. w is what
`backward` reports: the coefficient of each task's own gradient in the update (1 for every task
when nothing conflicts).

Hyperparameters: none. The visiting orders come from torch.randperm on torch's global generator
(one permutation per task per step), so a seeded run is reproducible.

Gradients: the shared parameters' (the paper's setting, first choice) or the cut representation's
(`weighting.gradients=representation`): the method keeps no state across steps, so it applies to
any set of task vectors. On the representation, the inner products run over the whole batch's
features (the rows are (T, batch x feature) vectors), and the heads' parameters still get the sum
of the task gradients.

Differences from LibMTL's PCGrad: LibMTL refuses representation gradients (rep_grad); here they
are allowed, as above. LibMTL visits every task including i itself (the paper: j != i; projecting
g_i' on its own g_i matters only when g_i' has turned against g_i) and draws the orders with
Python's `random`; here j != i and the orders come from torch's generator. LibMTL divides by
||g_j||^2 + 1e-8, which leaves part of a conflict in place when ||g_j||^2 is not well above 1e-8;
here the projection is exact (and skipped when g_j is zero, where there is no conflict). LibMTL
works on the gradient vectors in float32; here the same arithmetic runs on their Gram matrix,
accumulated in float64 (`gram_matrix`), which changes the result only by rounding. The reported weights are the same
coefficients LibMTL returns.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.weighting.gradients import gram_matrix
from baselines.weighting.base import PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("pcgrad")
class PCGrad(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "PCGrad, projects each task gradient off the others it conflicts with (Yu et al., NeurIPS 2020)"

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        count = gradients.shape[0]
        gram = gram_matrix(gradients)
        squared_norms = gram.diagonal().tolist()
        # row i: the coefficients of g_i' on the original gradients
        coefficients = torch.eye(count, dtype=torch.float64)
        for i in range(count):
            for j in torch.randperm(count).tolist():
                if j == i:
                    continue
                dot = float(coefficients[i] @ gram[:, j])
                if dot < 0 and squared_norms[j] > 0:
                    coefficients[i, j] -= dot / squared_norms[j]
        weights = coefficients.sum(dim=0)
        return weights.to(gradients.device, gradients.dtype) @ gradients, weights
