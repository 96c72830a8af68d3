"""FairGrad against weights solved by hand (the toy problem: tests/weighting_toy.py).

Every gradient of the toy is a multiple of x: g_t = c_t x, so K w = w^(-1/alpha) reads
c_t |x|^2 s = w_t^(-1/alpha) with s = sum_u c_u w_u: w_t = (c_t |x|^2 s)^(-alpha), and d = s x.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.config import WeightingConfig
from baselines.weighting.qp import fair_weights
from mtlbench.errors import InputError
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, TwoHeads, step, weighting


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        # K = diag(4, 9): K_tt w_t = w_t^(-1/alpha), w_t = K_tt^(-alpha / (1 + alpha))
        (1.0, [4 ** -0.5, 9 ** -0.5]),  # (1/2, 1/3): Nash-MTL's weights
        (2.0, [4 ** (-2 / 3), 9 ** (-2 / 3)]),  # (0.396850, 0.231120)
        (0.5, [4 ** (-1 / 3), 9 ** (-1 / 3)]),  # (0.629961, 0.480750)
    ],
)
def test_diagonal_gram_by_hand(alpha, expected):
    assert fair_weights(np.diag([4.0, 9.0]), alpha) == pytest.approx(expected, rel=1e-9)


def test_alpha_one_is_nash_mtl():
    # proportional fairness: K w = 1/w, the Nash bargaining condition. Nash-MTL divides K by its
    # norm but solves the unnormalised condition, so the weights agree; only its clip differs
    assert fair_weights(np.diag([4.0, 9.0]), 1.0) == pytest.approx([0.5, 1 / 3], rel=1e-9)
    fair = step(weighting("fairgrad", fairgrad_alpha=1.0))
    nash = step(weighting("nash_mtl", nash_max_norm=0.0))
    assert fair[0] == pytest.approx(nash[0])
    assert fair[2] == pytest.approx(nash[2])


def test_two_by_two_with_alpha_two_by_hand():
    # K = [[0.9, 0.4], [0.4, 6.4]], w = (1, 1/4): K w = (0.9 + 0.1, 0.4 + 1.6) = (1, 2) = w^(-1/2);
    # the solution is unique (strictly convex problem)
    assert fair_weights(np.array([[0.9, 0.4], [0.4, 6.4]]), 2.0) == pytest.approx([1.0, 0.25], rel=1e-9)
    # K = [[2, 1], [1, 2]]: by symmetry w_1 = w_2 = w, 3 w = w^(-1/2), w = 3^(-2/3) = 0.480750
    assert fair_weights(np.array([[2.0, 1.0], [1.0, 2.0]]), 2.0) == pytest.approx([3 ** (-2 / 3)] * 2, rel=1e-9)


def test_toy_step_by_hand():
    # alpha = 2 at X1: c = (4, 6), |x|^2 = 5: w_t = 1 / (5 c_t s)^2 = (1 / (400 s^2), 1 / (900 s^2)),
    # s = 4 w_1 + 6 w_2 = (1/100 + 1/150) / s^2 = 1 / (60 s^2), s = 60^(-1/3) = 0.255436
    # w = 60^(2/3) (1/400, 1/900) = (0.0383155, 0.0170291); d = s x = (0.255436, 0.510873)
    shared, heads, weights = step(weighting("fairgrad", fairgrad_alpha=2.0))
    assert [weights[task] for task in TASKS] == pytest.approx([60 ** (2 / 3) / 400, 60 ** (2 / 3) / 900])
    assert [weights[task] for task in TASKS] == pytest.approx([0.0383155, 0.0170291], rel=1e-5)
    assert shared == pytest.approx([60 ** (-1 / 3), 2 * 60 ** (-1 / 3)])
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients


def test_default_is_alpha_one_without_a_clip():
    # alpha = 1 at X2: c = (5, 9), |x|^2 = 5, s = sqrt(2/5): w = (1 / (5 sqrt 10), 1 / (9 sqrt 10)),
    # d = sqrt(2/5) (2, 1): |d| = sqrt 2, not clipped
    shared, heads, weights = step(weighting("fairgrad"), X2)
    assert [weights[task] for task in TASKS] == pytest.approx([1 / (5 * math.sqrt(10)), 1 / (9 * math.sqrt(10))])
    assert shared == pytest.approx([2 * math.sqrt(0.4), math.sqrt(0.4)])
    assert heads == pytest.approx((12.5, 22.5))  # 2 a y^2 = 12.5, 6 (b y - 1) y = 22.5


def test_representation_path():
    # alpha = 2, dL/dy = (4, 6), |x|^2 -> 1: w_t = 1 / (c_t s)^2, s = 4 w_1 + 6 w_2 = (1/4 + 1/6) / s^2,
    # s = (5/12)^(1/3) = 0.746901; w.grad = s x
    s = (5 / 12) ** (1 / 3)
    shared, heads, weights = step(weighting("fairgrad", gradients="representation", fairgrad_alpha=2.0), cut=True)
    assert [weights[task] for task in TASKS] == pytest.approx([1 / (4 * s) ** 2, 1 / (6 * s) ** 2])
    assert shared == pytest.approx([s, 2 * s])
    assert heads == pytest.approx((8.0, 12.0))


def test_three_orthogonal_tasks():
    # g = (1, 0, 0), (0, 2, 0), (0, 0, 4), alpha = 2: w_t = K_tt^(-2/3) = (1, 4^(-2/3), 16^(-2/3)), d = w_t |g_t| e_t
    method = weighting("fairgrad", tasks=THREE_TASKS, fairgrad_alpha=2.0)
    direction, weights = method.aggregate(torch.diag(torch.tensor([1.0, 2.0, 4.0])), torch.ones(3))
    assert weights.tolist() == pytest.approx([1.0, 4 ** (-2 / 3), 16 ** (-2 / 3)])
    assert direction.tolist() == pytest.approx([1.0, 2 * 4 ** (-2 / 3), 4 * 16 ** (-2 / 3)])


def test_no_state():
    method = weighting("fairgrad")
    step(method)
    assert method.state_dict() == {}


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
@pytest.mark.parametrize(
    "gradients",
    [[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [3.0, 4.0]], [[3.0, 4.0], [3.0, 4.0]], [[3.0, 4.0], [-3.0, -4.0]]],
)
def test_degenerate_gradients_stay_finite(gradients, alpha):
    direction, weights = weighting("fairgrad", fairgrad_alpha=alpha).aggregate(torch.tensor(gradients), torch.ones(2))
    assert torch.isfinite(weights).all() and (weights >= 0).all()
    assert torch.isfinite(direction).all()


def test_identical_gradients_by_hand():
    # alpha = 2, g_1 = g_2 = (3, 4): K = 25 [[1, 1], [1, 1]]; w_1 = w_2 = w, 50 w = w^(-1/2), w = 50^(-2/3)
    direction, weights = weighting("fairgrad", fairgrad_alpha=2.0).aggregate(torch.tensor([[3.0, 4.0], [3.0, 4.0]]), torch.ones(2))
    assert weights.tolist() == pytest.approx([50 ** (-2 / 3)] * 2, rel=1e-6)
    assert direction.tolist() == pytest.approx([6 * 50 ** (-2 / 3), 8 * 50 ** (-2 / 3)], rel=1e-6)


def test_single_task_and_empty_shared():
    # one task, alpha = 1: w = 1 / |g| = 1 / sqrt 180, d = g / |g| = (1, 2) / sqrt 5 (no clip)
    model = TwoHeads()
    weights = weighting("fairgrad", tasks=("segmentation",)).backward(
        {"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters())
    )
    assert weights == pytest.approx({"segmentation": 1 / math.sqrt(180)})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([1 / math.sqrt(5), 2 / math.sqrt(5)])
    shared, heads, weights = step(weighting("fairgrad"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))


def test_alpha_must_be_positive():
    with pytest.raises(InputError, match="fairgrad_alpha"):
        WeightingConfig(name="fairgrad", fairgrad_alpha=0.0)
