"""MoCo against updates worked by hand (the toy problem: tests/weighting_toy.py).

Notation: u = (1, 2) / sqrt 5 and v = (2, 1) / sqrt 5, unit vectors with u . v = 4/5. At X1 every
task gradient is a multiple of u, at X2 of v; MoCo tracks h_t = L_t g_t / |g_t|.
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.config import WeightingConfig
from baselines.weighting.moco import project_to_simplex
from mtlbench.errors import InputError
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, TwoHeads, step, weighting

SQRT5 = math.sqrt(5)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((0.5, 0.5), (0.5, 0.5)),  # already on the simplex
        ((1.0, 0.0), (1.0, 0.0)),
        # sorted (2, 0), partial sums - 1: (1, 1); 2 - 1/1 > 0, 0 - 1/2 < 0: theta = 1 -> (1, 0)
        ((2.0, 0.0), (1.0, 0.0)),
        # (0.8, 0.6): partial sums - 1 (-0.2, 0.4), both stay: theta = 0.4 / 2 = 0.2 -> (0.6, 0.4)
        ((0.8, 0.6), (0.6, 0.4)),
        # (0.5, 0.4, -0.5): partial sums - 1 (-0.5, -0.1, -0.6); -0.5 + 0.6/3 < 0: theta = -0.1/2 -> (0.55, 0.45, 0)
        ((0.5, 0.4, -0.5), (0.55, 0.45, 0.0)),
        # order does not matter: the same, permuted
        ((-0.5, 0.5, 0.4), (0.0, 0.55, 0.45)),
        # (-1, -1, -1): theta = (-3 - 1) / 3, every entry 1/3
        ((-1.0, -1.0, -1.0), (1 / 3, 1 / 3, 1 / 3)),
    ],
)
def test_simplex_projection_by_hand(values, expected):
    assert project_to_simplex(torch.tensor(values, dtype=torch.float64)).tolist() == pytest.approx(expected)


def test_two_steps_by_hand():
    method = weighting("moco")  # beta 0.5, beta_sigma 0.5, gamma 0.1, gamma_sigma 0.5, rho 0
    shared, heads, weights = step(method, X1)
    # k = 1: beta_1 = 0.5, gamma_1 = 0.1. h = (4 u, 3 u) (losses 4, 3), y = 0.5 h = (2 u, 1.5 u)
    # Y Y^T = [[4, 3], [3, 2.25]], times lambda = (0.5, 0.5): (3.5, 2.625)
    # lambda - 0.1 (3.5, 2.625) = (0.15, 0.2375); projection: theta = (0.3875 - 1) / 2 -> (0.45625, 0.54375)
    # d = (0.45625 * 2 + 0.54375 * 1.5) u = 1.728125 u = (0.772841, 1.545683)
    assert [weights[task] for task in TASKS] == pytest.approx([0.45625, 0.54375])
    assert shared == pytest.approx([1.728125 / SQRT5, 2 * 1.728125 / SQRT5])
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients

    shared, heads, weights = step(method, X2)
    # k = 2: b = 0.5 / sqrt 2, gamma_2 = 0.1 / sqrt 2; h = (6.25 v, 6.75 v)
    # y_a = (1 - b) 2 u + 6.25 b v = 1.292893 u + 2.209709 v
    # y_s = (1 - b) 1.5 u + 6.75 b v = 0.969670 u + 2.386485 v
    # with u . v = 0.8: Y Y^T = [[11.125453, 10.709644], [10.709644, 10.338137]],
    # times (0.45625, 0.54375) = (10.899357, 10.507637);
    # lambda - gamma_2 (...) = (-0.314451, -0.199252); theta = (-0.513703 - 1) / 2 -> (0.442401, 0.557599)
    # d = 0.442401 y_a + 0.557599 y_s = 1.112664 u + 2.308279 v = (2.562186, 2.027491)
    assert [weights[task] for task in TASKS] == pytest.approx([0.4424006, 0.5575994])
    assert shared == pytest.approx([2.5621863, 2.0274909])
    assert heads == pytest.approx((12.5, 22.5))


def test_three_tasks_projection_can_zero_a_weight():
    # X1 with the third task: L = (4, 3, 1), g = (4, 8), (6, 12), (-2, -4): h = (4 u, 3 u, -u), y = (2u, 1.5u, -0.5u)
    # Y Y^T lambda with lambda = 1/3: (6, 4.5, -1.5) / 3 = (2, 1.5, -0.5)
    # gamma 0.1: (1/3 - 0.2, 1/3 - 0.15, 1/3 + 0.05) = (0.133333, 0.183333, 0.383333), sum 0.7: theta = -0.1
    # -> (0.233333, 0.283333, 0.483333); d = (0.466667 + 0.425 - 0.241667) u = 0.65 u
    shared, heads, weights = step(weighting("moco", tasks=THREE_TASKS))
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([0.7 / 3, 0.85 / 3, 1.45 / 3])
    assert shared == pytest.approx([0.65 / SQRT5, 1.3 / SQRT5])
    assert heads == pytest.approx((8.0, 12.0))
    # gamma 1: (1/3 - 2, 1/3 - 1.5, 1/3 + 0.5) = (-1.666667, -1.166667, 0.833333): only the largest stays,
    # theta = -1/6 -> (0, 0, 1); d = y_third = -0.5 u
    shared, _, weights = step(weighting("moco", tasks=THREE_TASKS, moco_gamma=1.0))
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([0.0, 0.0, 1.0])
    assert shared == pytest.approx([-0.5 / SQRT5, -1.0 / SQRT5])


def test_rho_pulls_the_weights_together():
    method = weighting("moco", moco_rho=10.0)
    # first step as in test_two_steps_by_hand plus 10 lambda = (5, 5): (0.5, 0.5) - 0.1 (8.5, 7.625)
    # = (-0.35, -0.2625); theta = (-0.6125 - 1) / 2 -> (0.45625, 0.54375), a uniform shift the projection removes
    weights = step(method, X1)[2]
    assert [weights[task] for task in TASKS] == pytest.approx([0.45625, 0.54375])
    # second step: (Y Y^T + 10 I) lambda = (10.899357 + 4.5625, 10.507637 + 5.4375) = (15.461857, 15.945137);
    # lambda - (0.1 / sqrt 2) (...) = (-0.637068, -0.583741); theta = (-1.220810 - 1) / 2 -> (0.473337, 0.526663),
    # nearer 1/2 than without rho (0.442401, 0.557599)
    weights = step(method, X2)[2]
    assert [weights[task] for task in TASKS] == pytest.approx([0.4733365, 0.5266635])


def test_no_decay_with_zero_sigmas():
    # beta_sigma = gamma_sigma = 0: step 2 uses beta 0.5 and gamma 0.1 again. y at X2:
    # y_a = 0.5 (2 u) + 0.5 (6.25 v) = u + 3.125 v, y_s = 0.75 u + 3.375 v
    # (the step size shows in the tracked values: 0.5 of the new h instead of 0.353553)
    method = weighting("moco", moco_beta_sigma=0.0, moco_gamma_sigma=0.0)
    step(method, X1)
    step(method, X2)
    u, v = torch.tensor([1.0, 2.0]) / SQRT5, torch.tensor([2.0, 1.0]) / SQRT5
    assert method.tracked[0].tolist() == pytest.approx((u + 3.125 * v).tolist())
    assert method.tracked[1].tolist() == pytest.approx((0.75 * u + 3.375 * v).tolist())
    assert int(method.step) == 2


def test_state_dict_round_trip_gives_the_same_next_step():
    trained = weighting("moco")
    step(trained, X1)
    assert trained.state_dict()["tracked"].flatten().tolist() == pytest.approx([2 / SQRT5, 4 / SQRT5, 1.5 / SQRT5, 3 / SQRT5])
    resumed = weighting("moco")
    resumed.load_state_dict(trained.state_dict())
    fresh = weighting("moco")
    expected = step(trained, X2)
    assert step(resumed, X2) == expected
    assert step(fresh, X2)[0] != pytest.approx(expected[0])  # the state is what made the difference
    assert step(resumed, X1) == step(trained, X1)  # and the step counter carries on


def test_zero_and_identical_gradients_stay_finite():
    # x = (0, 0): every gradient is zero, h = 0, y = 0, d = 0; lambda stays at 1/2
    shared, _, weights = step(weighting("moco"), x=(0.0, 0.0))
    assert shared == [0.0, 0.0]
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})
    direction, lambdas = weighting("moco").aggregate(torch.tensor([[3.0, 4.0], [3.0, 4.0]]), torch.tensor([1.0, 1.0]))
    # h = (0.6, 0.8) twice, y = 0.5 h, Y Y^T = 0.25 [[1, 1], [1, 1]]: a uniform step, lambda stays 1/2, d = 0.5 h
    assert lambdas.tolist() == pytest.approx([0.5, 0.5])
    assert direction.tolist() == pytest.approx([0.3, 0.4])


def test_single_task_and_empty_shared():
    # one task: lambda = 1; y = 0.5 * 3 u, d = 1.5 u
    model = TwoHeads()
    weights = weighting("moco", tasks=("segmentation",)).backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    assert weights == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([1.5 / SQRT5, 3 / SQRT5])
    shared, heads, weights = step(weighting("moco"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))


def test_the_representation_is_refused_and_the_size_is_fixed():
    with pytest.raises(InputError, match="weighting.gradients"):
        WeightingConfig(name="moco", gradients="representation")
    method = weighting("moco")
    step(method)
    model = TwoHeads()
    with pytest.raises(ValueError, match="changed size"):
        method.backward(model.losses(X1), [model.shared.weight, model.head_activity])
