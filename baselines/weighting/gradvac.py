"""Gradient Vaccine, GradVac (Wang, Tsvetkov, Firat and Cao, "Gradient Vaccine: Investigating and
Improving Multi-task Optimization in Massively Multilingual Models", ICLR 2021).

PCGrad with a target similarity learnt per task pair instead of the fixed target 0. Each ordered
pair (i, j) has a target cosine t_ij, an exponential moving average of the cosines seen, starting
at 0. Per step, start from g_i' = g_i; for each task i visit the other tasks j in a random order
(a fresh order per task and per step) and compute c = cos(g_i', g_j) with the ORIGINAL g_j. If
c < t_ij, add the multiple of g_j that brings the cosine up to exactly t_ij:

    g_i' <- g_i' + ||g_i'|| (t_ij sqrt(1 - c^2) - c sqrt(1 - t_ij^2)) / (||g_j|| sqrt(1 - t_ij^2)) g_j

(with t_ij = 0 this is PCGrad's projection). Whether or not it corrected, t_ij <- (1 - beta) t_ij
+ beta c. The update direction is sum_i g_i'.

Only multiples of original gradients are added, so g_i' = sum_k C_ik g_k and everything runs on
the T x T Gram matrix G = g g^T in float64 on the CPU (g_i' . g_j = (C G)_ij, ||g_i'||^2 =
C_i G C_i^T); the direction is w @ g with w = column sums of C. w is what `backward` reports: the
coefficient of each task's own gradient in the update.

This is the paper's whole-model variant (one parameter group: LibMTL's GradVac_group_type 0, its
default); the paper's per-layer / per-matrix groups, with their own targets each, are not
implemented.

Hyperparameter: `weighting.gradvac_beta`, the EMA rate beta of the targets (the paper: 1e-2;
LibMTL's default is 0.5, which makes the targets follow the last few steps). The visiting orders
come from torch.randperm on torch's global generator (one permutation per task per step). State:
the T x T targets (buffer `targets`, diagonal unused), saved and restored with the state dict.

Gradients: the shared parameters' (the paper's setting, first choice) or the cut representation's
(`weighting.gradients=representation`). The state is one cosine per task pair, not a vector over
the gradients, so it survives a representation whose size changes with the batch; there the
targets follow the similarity of the representation gradients over each batch.

The correction aims at the target clipped to [-1 + 1e-6, 1 - 1e-6] (the stored EMA is not
clipped): the formula divides by sqrt(1 - t^2), and angles that close to 0 or pi are below what
the rounding of float32 gradients resolves, so without the clip a pair of (nearly) identical
gradients drives the target to 1 and a rounding-level dip below it into an arbitrarily large
correction.
A zero gradient, or one that earlier corrections cancelled (||g_i'|| below 1e-6 sum_k |C_ik|
||g_k||, where what is left is rounding residue), has cosine 0 with everything (as LibMTL's 1e-8
makes it) and receives no correction. The Gram matrix is accumulated in float64 (PCGrad's
`gram_matrix`).

Differences from LibMTL's GradVac: LibMTL refuses representation gradients; here they are allowed.
Its cosine is dot / (||g_i'|| ||g_j|| + 1e-8) and its correction divides by ... + 1e-8, which
shrink the cosines and corrections of small gradients (norms near 1e-4 and below); here both are
exact, with the target clip and the zero-gradient rule above instead. It shuffles with Python's
`random`; here torch's generator. It reports weights of 1 for every task (its weight bookkeeping
is commented out); here the coefficients w. Only the whole-model group is implemented (see above).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.registry import WEIGHTINGS

TARGET_LIMIT = 1 - 1e-6
# below this share of sum_k |C_ik| ||g_k||, g_i' is rounding residue of a cancellation
CANCELLED = 1e-6


@WEIGHTINGS.register("gradvac")
class GradVac(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "GradVac, gradient vaccine: lifts task-pair gradient similarities to EMA targets (Wang et al., ICLR 2021)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.register_buffer("targets", torch.zeros(len(self.tasks), len(self.tasks), dtype=torch.float64))

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        count = gradients.shape[0]
        beta = self.config.gradvac_beta
        gram = gram_matrix(gradients)
        norms = gram.diagonal().clamp_min(0).sqrt()
        norm_values = norms.tolist()
        targets = self.targets.detach().to("cpu", torch.float64).clone()
        coefficients = torch.eye(count, dtype=torch.float64)
        for i in range(count):
            for j in torch.randperm(count).tolist():
                if j == i:
                    continue
                row = coefficients[i]
                norm_i = math.sqrt(max(float(row @ gram @ row), 0.0))
                measurable = norm_i > CANCELLED * float(row.abs() @ norms) and norm_values[j] > 0
                cosine = min(max(float(row @ gram[:, j]) / (norm_i * norm_values[j]), -1.0), 1.0) if measurable else 0.0
                target = float(targets[i, j])
                aim = min(max(target, -TARGET_LIMIT), TARGET_LIMIT)
                if measurable and cosine < aim:
                    sine, aim_sine = math.sqrt(1 - cosine**2), math.sqrt(1 - aim**2)
                    coefficients[i, j] += norm_i * (aim * sine - cosine * aim_sine) / (norm_values[j] * aim_sine)
                targets[i, j] = (1 - beta) * target + beta * cosine
        self.targets.copy_(targets)
        weights = coefficients.sum(dim=0)
        return weights.to(gradients.device, gradients.dtype) @ gradients, weights
