"""CAGrad against simplex problems solved by hand (the toy problem: tests/weighting_toy.py).

Notation: g_0 the mean gradient, w* the simplex solution, lambda = c ||g_0|| / ||g_w*||, and the
update T (g_0 + lambda g_w*) / r with r = 1 + c^2 (rescale 1), 1 (rescale 0) or 1 + c (rescale 2);
the reported weights are T (1/T + lambda w*_i) / r.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.config import WeightingConfig
from baselines.weighting.cagrad import simplex_solution
from mtlbench.errors import InputError
from tests.weighting_toy import THREE_TASKS, X1, X2, step, weighting


@pytest.mark.parametrize(("rescale", "divisor"), [(0, 1.0), (1, 1.25), (2, 1.5)])
def test_orthogonal_gradients_of_equal_norm(rescale, divisor):
    method = weighting("cagrad", cagrad_c=0.5, cagrad_rescale=rescale)
    direction, weights = method.aggregate(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2))
    # G = I: w^T G 1/2 = 1/2 on the whole simplex, ||g_w|| = |w| is smallest at w* = (1/2, 1/2) (symmetry).
    # g_0 = g_w* = (1/2, 1/2), ||g_0|| = 1/sqrt2: lambda = 0.5; update 2 (1 + 0.5) (1/2, 1/2) / r = 1.5 (1, 1) / r
    assert simplex_solution(np.eye(2), 0.5) == pytest.approx([0.5, 0.5], abs=1e-6)
    assert direction.tolist() == pytest.approx([1.5 / divisor, 1.5 / divisor], rel=1e-5)
    # weights 2 (1/2 + 0.5 * 1/2) / r = 1.5 / r
    assert weights.tolist() == pytest.approx([1.5 / divisor, 1.5 / divisor], rel=1e-5)


def test_no_radius_is_equal_weighting():
    shared, heads, weights = step(weighting("cagrad", cagrad_c=0.0))
    # c = 0: lambda = 0, r = 1: the update is T g_0 = the sum (4, 8) + (6, 12)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})


def test_two_toy_tasks_lean_to_the_smaller_gradient():
    c = 0.4
    shared, heads, weights = step(weighting("cagrad"))
    # g1 = 4u, g2 = 6u with u = (1, 2), ||u|| = sqrt5; g_0 = 5u, ||g_0|| = 5 sqrt5.
    # On the simplex g_w = (4 w1 + 6 w2) u = (6 - 2 w1) u, so the objective
    #   g_w . g_0 + c ||g_0|| ||g_w|| = 25 (6 - 2 w1) + c 25 (6 - 2 w1)
    # falls as w1 grows: w* = (1, 0), g_w* = g1 = 4u, lambda = c 5 sqrt5 / (4 sqrt5) = 5c/4.
    # update 2 (5u + 5c/4 4u) / (1 + c^2) = 10 (1 + c) / (1 + c^2) u = (14 / 1.16) (1, 2)
    assert shared == pytest.approx([14 / 1.16, 28 / 1.16], rel=1e-5)
    assert shared == pytest.approx([12.0689655, 24.1379310], rel=1e-5)
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients
    # weights 2 (1/2 + 5c/4) / 1.16 = (1 + 2.5c) / 1.16 = 2 / 1.16 and 2 (1/2) / 1.16 = 1 / 1.16
    assert weights == pytest.approx({"activity": (1 + 2.5 * c) / (1 + c**2), "segmentation": 1 / (1 + c**2)}, rel=1e-5)


def test_three_toy_tasks_help_the_conflicting_one():
    c = 0.4
    shared, heads, weights = step(weighting("cagrad", tasks=THREE_TASKS))
    # g = 4u, 6u, -2u: g_0 = (8/3) u; with s = 4 w1 + 6 w2 - 2 w3 in [-2, 6], g_w = s u and the objective
    #   g_w . g_0 + c ||g_0|| ||g_w|| = (40/3) (s + c |s|)
    # is smallest at s = -2: w* = (0, 0, 1), g_w* = -2u, lambda = c (8/3) sqrt5 / (2 sqrt5) = 4c/3.
    # update 3 ((8/3) u - (4c/3) 2u) / (1 + c^2) = 8 (1 - c) / (1 + c^2) u = (4.8 / 1.16) (1, 2)
    assert shared == pytest.approx([4.8 / 1.16, 9.6 / 1.16], rel=1e-5)
    assert heads == pytest.approx((8.0, 12.0))
    # weights 3 (1/3 + (4c/3) w*) / 1.16: (1, 1, 1 + 4c) / 1.16
    expected = {"activity": 1 / 1.16, "segmentation": 1 / 1.16, "third": (1 + 4 * c) / 1.16}
    assert weights == pytest.approx(expected, rel=1e-5)


def test_representation_path():
    c = 0.4
    method = weighting("cagrad", gradients="representation")
    shared, heads, weights = step(method, X2, cut=True)
    # dL/dy = (5, 9): g_0 = 7, g_w = 5 w1 + 9 w2 = 9 - 4 w1 > 0, objective 7 (9 - 4 w1) (1 + c): w* = (1, 0);
    # lambda = 7c / 5; update 2 (7 + 7c) / (1 + c^2) = 14 (1 + c) / (1 + c^2) on y, and w.grad = that x
    on_y = 14 * (1 + c) / (1 + c**2)
    assert shared == pytest.approx([2 * on_y, on_y], rel=1e-5)
    assert heads == pytest.approx((12.5, 22.5))  # 2 a y^2, 6 (b y - 1) y at y = 2.5
    assert weights == pytest.approx({"activity": (1 + 2 * 7 * c / 5) / (1 + c**2), "segmentation": 1 / (1 + c**2)}, rel=1e-5)


def test_the_solution_does_not_depend_on_the_gradient_scale():
    gradients = torch.tensor([[1.0, 0.2], [-0.3, 1.0], [0.5, 0.5]])
    method = weighting("cagrad", tasks=THREE_TASKS)
    direction, weights = method.aggregate(gradients, torch.ones(3))
    tiny_direction, tiny_weights = method.aggregate(gradients * 1e-6, torch.ones(3))
    assert tiny_weights.tolist() == pytest.approx(weights.tolist(), rel=1e-4)
    assert (tiny_direction * 1e6).tolist() == pytest.approx(direction.tolist(), rel=1e-4)


def test_the_solution_is_the_minimum_over_the_simplex():
    # against a fine grid over the 3-simplex, for a Gram matrix with a conflict
    rows = np.array([[1.0, 0.2], [-0.8, 0.5], [0.3, -1.0]])
    gram, c = rows @ rows.T, 0.4

    def objective(w):
        return w @ gram @ np.full(3, 1 / 3) + c * math.sqrt(gram.mean()) * math.sqrt(w @ gram @ w)

    w = simplex_solution(gram, c)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    steps = np.linspace(0, 1, 101)
    grid = [np.array([a, b, 1 - a - b]) for a in steps for b in steps if a + b <= 1 + 1e-12]
    assert objective(w) <= min(objective(v) for v in grid) + 1e-6


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]),  # zero gradients: no solve, zero update
        ([[1.0, 2.0], [-1.0, -2.0]], [0.0, 0.0]),  # opposite: g_0 = 0, radius 0, update 0
        # identical: g_w = g_0 = g, lambda = c: 2 (1 + c) g / (1 + c^2) = (2.8 / 1.16) g
        ([[3.0, -1.0], [3.0, -1.0]], [3 * 2.8 / 1.16, -2.8 / 1.16]),
        ([[0.0, 0.0], [2.0, 0.0]], None),  # one zero gradient
    ],
)
def test_degenerate_gradients_stay_finite(rows, expected):
    direction, weights = weighting("cagrad").aggregate(torch.tensor(rows), torch.ones(2))
    assert torch.isfinite(direction).all() and torch.isfinite(weights).all()
    if expected is not None:
        assert direction.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_single_task():
    c = 0.4
    method = weighting("cagrad", tasks=("segmentation",))
    direction, weights = method.aggregate(torch.tensor([[6.0, 12.0]]), torch.ones(1))
    # w* = 1, g_w = g_0 = g, lambda = c: (1 + c) g / (1 + c^2)
    assert direction.tolist() == pytest.approx([6 * 1.4 / 1.16, 12 * 1.4 / 1.16])
    assert weights.tolist() == pytest.approx([1.4 / 1.16])
    shared, _, _ = step(weighting("cagrad"), X1, with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])  # nothing shared: a plain backward of the sum
    assert c == weighting("cagrad").config.cagrad_c


def test_settings_are_checked():
    assert weighting("cagrad").state_dict() == {}
    with pytest.raises(InputError, match="cagrad_rescale"):
        WeightingConfig(name="cagrad", cagrad_rescale=3)
    with pytest.raises(InputError, match="cagrad_c"):
        WeightingConfig(name="cagrad", cagrad_c=-0.1)
