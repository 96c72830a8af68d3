"""Aligned-MTL (Senushkin, Patakin, Kuznetsov and Konushin, "Independent Component Alignment for
Multi-Task Learning", CVPR 2023).

The task gradients are made orthogonal and of equal size before they are added, which removes
both their conflicts and their dominance: the condition number of the aligned gradient matrix is
1. With the Gram matrix K = G G^T = V diag(lambda) V^T (T x T), the aligned rows are
B G with B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T: B G = sqrt(lambda_min) (K^{-1/2} G),
orthonormal rows (the closest to G's, the Procrustes solution) scaled to G's smallest singular
value sqrt(lambda_min). The update is their sum, sum_t w_t g_t with w = B^T 1 (the column sums of
B), which `backward` reports. Two orthogonal gradients of norms 1 and 2, for example, get the
weights (1, 1/2): each contributes a unit vector.

A rank-deficient K (dependent, identical or zero gradients) is handled as in LibMTL and the
authors' code: only the eigenvalues above max(lambda) x T x the gradients' machine epsilon are
kept, lambda_min is the smallest of those, and K^{-1/2} acts on their eigenvectors only (a
pseudo-inverse square root). Identical gradients get w_t = 1 each (the sum); a zero gradient gets
weight 0; all-zero gradients get zero weights and a zero update.

No hyperparameters: the scale is lambda_min (the authors' default scale_mode "min"; their code
also offers the median and the mean eigenvalue).

With `weighting.gradients=representation` the gradients are those of the cut shared
representation: the paper's Aligned-MTL-UB.

Differences from LibMTL's Aligned_MTL:
- The eigendecomposition is numpy's eigh in float64 (LibMTL: torch.symeig, removed from recent
  PyTorch, in the gradients' dtype); the rank tolerance uses the gradients' machine epsilon
  (LibMTL: torch's default dtype's, the same for float32 gradients).
- All-zero gradients give a zero update (LibMTL indexes an empty eigenvalue list).
- With the representation, the Gram matrix is that of the full flattened gradients; LibMTL sums
  them over the batch first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from baselines.weighting.base import GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import combine, kept_eigenpairs
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import PARAMETERS, REPRESENTATION


@WEIGHTINGS.register("aligned_mtl")
class AlignedMTL(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "Aligned-MTL, task gradients aligned to orthogonal equal-norm components (Senushkin et al., CVPR 2023)"

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        return combine(aligned_weights(gram_matrix(gradients).numpy(), torch.finfo(gradients.dtype).eps), gradients)


def aligned_weights(gram: np.ndarray, eps: float) -> np.ndarray:
    """w = B^T 1 with B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T over K's numerical rank."""
    values, vectors = kept_eigenpairs(gram, eps)
    if not values.size:
        return np.zeros(len(gram))
    alignment = np.sqrt(values[-1]) * (vectors / np.sqrt(values)) @ vectors.T
    return alignment.sum(axis=0)
