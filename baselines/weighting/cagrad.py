"""Conflict-averse gradient descent, CAGrad (Liu, Liu, Jin, Stone and Liu, "Conflict-Averse
Gradient Descent for Multi-task Learning", NeurIPS 2021).

The update d maximises the worst task's improvement, min_i g_i . d, within a ball of radius
c ||g_0|| around the mean gradient g_0 = (1/T) sum_i g_i. Its dual is a problem over the simplex:

    w* = argmin_{w >= 0, sum w = 1}  g_w . g_0 + c ||g_0|| ||g_w||,    g_w = sum_i w_i g_i,

and then d = g_0 + (c ||g_0|| / ||g_w*||) g_w*. Both terms are quadratic forms of the T x T Gram
matrix G = g g^T (g_w . g_0 = w^T G 1/T, ||g_w||^2 = w^T G w), so the problem is solved as the
authors do, with scipy's SLSQP from the uniform w, in float64 (G accumulated in float64 by
PCGrad's `gram_matrix`). c = 0 gives the mean gradient.

The step is then rescaled (`cagrad_rescale`): 0 leaves d, 1 divides it by 1 + c^2 (the authors'
choice), 2 by 1 + c; and multiplied by T, as the authors' image experiments do ("to match the sum
loss"), so that the result is on the scale of the gradient of the summed losses, like equal
weighting's: with c = 0 it is exactly EW's sum. `backward` reports the coefficient of each task's
gradient in that update, T (1/T + lambda w*_i) / rescale with lambda = c ||g_0|| / ||g_w*||
(1 for every task when c = 0).

Hyperparameters: `weighting.cagrad_c`, the radius c (the authors: 0.4 for NYU-v2 and CityScapes,
the multi-task image experiments, where they also ran 0.6 on CityScapes; 0.5 is their code's and
LibMTL's default; the paper's reinforcement-learning runs use larger c), and
`weighting.cagrad_rescale` (the authors' 1).

Gradients: the shared parameters' (the paper's setting, first choice) or the cut representation's
(`weighting.gradients=representation`): the method keeps no state, so it applies to any set of
task vectors; on the representation, the inner products run over the whole batch's features.

Differences from LibMTL's CAGrad: LibMTL returns the mean-scale update (without the factor T) and
reports w* as the weights; here the update is T times larger (the authors' code) and the weights
are its coefficients. LibMTL refuses representation gradients; here they are allowed. The Gram
matrix is divided by its mean diagonal before the solve: the minimiser does not change, but SLSQP's
absolute tolerance then means the same at every gradient scale (in LibMTL, tiny gradients stop the
solver at its uniform start). LibMTL adds 1e-8 to the radius and to ||g_w|| in lambda; here
lambda is exact, and 0 where g_w* is zero (where it multiplies nothing). The solver's answer is
clipped to the simplex, and an all-zero Gram matrix (every gradient zero) skips the solve.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from baselines.weighting.base import PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.gradients import gram_matrix
from baselines.weighting.registry import WEIGHTINGS

RESCALES = {0: lambda c: 1.0, 1: lambda c: 1 + c**2, 2: lambda c: 1 + c}


@WEIGHTINGS.register("cagrad")
class CAGrad(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "CAGrad, conflict-averse gradient descent: best worst-task step near the mean gradient (Liu et al., NeurIPS 2021)"

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        count = gradients.shape[0]
        c = self.config.cagrad_c
        gram = gram_matrix(gradients).numpy()
        w = simplex_solution(gram, c)
        mean_norm = math.sqrt(max(gram.mean(), 0.0))  # ||g_0||^2 = mean of G
        combined_norm = math.sqrt(max(float(w @ gram @ w), 0.0))
        scale = c * mean_norm / combined_norm if combined_norm > 0 else 0.0
        weights = torch.from_numpy(count * (1 / count + scale * w) / RESCALES[self.config.cagrad_rescale](c))
        return weights.to(gradients.device, gradients.dtype) @ gradients, weights


def simplex_solution(gram: np.ndarray, c: float) -> np.ndarray:
    """argmin over the simplex of w^T G 1/T + c sqrt(1^T G 1 / T^2) sqrt(w^T G w), by SLSQP from the
    uniform w (the authors' solve, with G rescaled so its diagonal averages 1)."""
    count = gram.shape[0]
    uniform = np.full(count, 1 / count)
    size = float(np.trace(gram)) / count
    if not size > 0:
        return uniform
    gram = gram / size
    radius = c * math.sqrt(max(gram.mean(), 0.0))
    mean_products = gram @ uniform

    def objective(w: np.ndarray) -> float:
        # the authors' 1e-8 keeps the square root differentiable where g_w vanishes
        return float(w @ mean_products + radius * math.sqrt(max(float(w @ gram @ w), 0.0) + 1e-8))

    result = minimize(
        objective, uniform, method="SLSQP", bounds=[(0.0, 1.0)] * count, constraints=({"type": "eq", "fun": lambda w: 1 - w.sum()},)
    )
    w = np.clip(result.x, 0.0, None) if np.all(np.isfinite(result.x)) else uniform
    return w / w.sum() if w.sum() > 0 else uniform
