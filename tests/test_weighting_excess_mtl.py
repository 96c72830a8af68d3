"""ExcessMTL against updates worked by hand (the toy problem: tests/weighting_toy.py).

The excess-risk estimate is e_t = sum_j g_tj^2 / sqrt(S_tj + 1e-7), S_t the running sum of g_t^2;
the 1e-7 moves these numbers by less than 1e-8 relative and is left out of the arithmetic.
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.config import WeightingConfig
from mtlbench.errors import InputError
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, TwoHeads, step, weighting


def test_two_steps_by_hand():
    method = weighting("excess_mtl")  # excess_step 0.01
    shared, heads, weights = step(method, X1)
    # g = (4, 8), (6, 12); S = g^2, so e_t = sum |g_tj| = (12, 18): the first estimates. r = (1, 1):
    # a uniform factor, the weights stay 1; d = g_a + g_s
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients

    shared, heads, weights = step(method, X2)
    # g = (10, 5), (18, 9); S_a = (16 + 100, 64 + 25) = (116, 89), S_s = (36 + 324, 144 + 81) = (360, 225)
    # e_a = 100 / sqrt 116 + 25 / sqrt 89 = 9.284767 + 2.649995 = 11.934762, r_a = e_a / 12 = 0.994563
    # e_s = 324 / sqrt 360 + 81 / 15 = 17.076299 + 5.4 = 22.476299, r_s = e_s / 18 = 1.248683
    # w = 2 softmax(0.01 r): w_a = 2 / (1 + exp(0.01 (r_s - r_a))) = 0.998729, w_s = 1.001271
    r_a = (100 / math.sqrt(116) + 25 / math.sqrt(89)) / 12
    r_s = (324 / math.sqrt(360) + 81 / 15) / 18
    w_a = 2 / (1 + math.exp(0.01 * (r_s - r_a)))
    assert [weights[task] for task in TASKS] == pytest.approx([w_a, 2 - w_a])
    assert [weights[task] for task in TASKS] == pytest.approx([0.9987294, 1.0012706])
    assert shared == pytest.approx([10 * w_a + 18 * (2 - w_a), 5 * w_a + 9 * (2 - w_a)])  # (28.010165, 14.005082)
    assert heads == pytest.approx((12.5, 22.5))


def test_the_step_size_and_the_accumulated_weights():
    method = weighting("excess_mtl", excess_step=1.0)
    step(method, X1)
    _, _, weights = step(method, X2)
    # as above with eta = 1: w_a = 2 / (1 + exp(1.248683 - 0.994563)) = 0.873619
    w_a = 2 / (1 + math.exp(1.2486833 - 0.9945635))
    assert [weights[task] for task in TASKS] == pytest.approx([w_a, 2 - w_a])
    assert w_a == pytest.approx(0.8736195)
    _, _, weights = step(method, X1)
    # third step at X1: S_a = (132, 153), S_s = (396, 369)
    # e_a = 16 / sqrt 132 + 64 / sqrt 153 = 6.566715, e_s = 36 / sqrt 396 + 144 / sqrt 369 = 9.305409
    # the weights multiply on: w ~ (w_a exp(e_a / 12), w_s exp(e_s / 18)), rescaled to sum 2
    r_a, r_s = (16 / math.sqrt(132) + 64 / math.sqrt(153)) / 12, (36 / math.sqrt(396) + 144 / math.sqrt(369)) / 18
    a, s = w_a * math.exp(r_a), (2 - w_a) * math.exp(r_s)
    assert [weights[task] for task in TASKS] == pytest.approx([2 * a / (a + s), 2 * s / (a + s)])


def test_three_tasks_sum_to_three():
    method = weighting("excess_mtl", tasks=THREE_TASKS)
    step(method, X1)  # third task: g = (-2, -4), first estimate 2 + 4 = 6
    _, _, weights = step(method, X2)
    # third at X2: g = 2 (y - 3) x = (-2, -1), S = (8, 17): e = 4 / sqrt 8 + 1 / sqrt 17 = 1.656749, r = 0.276125
    # w = 3 softmax(0.01 (0.994563, 1.248683, 0.276125)) = (1.001540, 1.004089, 0.994371)
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([1.0015404, 1.0040888, 0.9943708])
    assert sum(weights.values()) == pytest.approx(3.0)


def test_state_dict_round_trip_gives_the_same_next_step():
    trained = weighting("excess_mtl", excess_step=1.0)
    step(trained, X1)
    state = trained.state_dict()
    assert state["squared_sum"].flatten().tolist() == pytest.approx([16.0, 64.0, 36.0, 144.0])
    assert state["first_estimates"].tolist() == pytest.approx([12.0, 18.0])
    resumed = weighting("excess_mtl", excess_step=1.0)
    resumed.load_state_dict(state)
    fresh = weighting("excess_mtl", excess_step=1.0)
    expected = step(trained, X2)
    assert step(resumed, X2) == expected
    assert step(fresh, X2)[2] != pytest.approx(expected[2])  # a fresh one takes X2 as its first step
    assert step(resumed, X1) == step(trained, X1)


def test_a_zero_gradient_has_no_excess_risk():
    # g_a = 0: e_a = 0, no normaliser yet, r_a = 0; g_s = (3, 4): e_s = 3 + 4 = 7, r_s = 1
    # w = 2 softmax(0, 0.01) = (2 / (1 + e^0.01), 2 e^0.01 / (1 + e^0.01)) = (0.995000, 1.005000)
    method = weighting("excess_mtl")
    direction, weights = method.aggregate(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), torch.ones(2))
    w_a = 2 / (1 + math.exp(0.01))
    assert weights.tolist() == pytest.approx([w_a, 2 - w_a])
    assert direction.tolist() == pytest.approx([3 * (2 - w_a), 4 * (2 - w_a)])
    # its first positive estimate becomes its normaliser: g_a = (1, 0) gives e_a = 1, r_a = 1;
    # S_s = (18, 32): e_s = 9 / sqrt 18 + 16 / sqrt 32 = 4.949747, r_s = e_s / 7 = 1 / sqrt 2
    _, weights = method.aggregate(torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.ones(2))
    a, s = w_a * math.exp(0.01), (2 - w_a) * math.exp(0.01 / math.sqrt(2))
    assert weights.tolist() == pytest.approx([2 * a / (a + s), 2 * s / (a + s)])


def test_zero_and_identical_gradients_stay_finite():
    # x = (0, 0): every gradient is zero; nothing changes
    shared, _, weights = step(weighting("excess_mtl"), x=(0.0, 0.0))
    assert shared == [0.0, 0.0]
    assert weights == {"activity": 1.0, "segmentation": 1.0}
    method = weighting("excess_mtl")
    for _ in range(2):  # identical gradients: identical estimates, uniform factors, weights 1
        direction, weights = method.aggregate(torch.tensor([[3.0, 4.0], [3.0, 4.0]]), torch.ones(2))
        assert weights.tolist() == pytest.approx([1.0, 1.0])
        assert direction.tolist() == pytest.approx([6.0, 8.0])


def test_single_task_and_empty_shared():
    model = TwoHeads()
    weights = weighting("excess_mtl", tasks=("segmentation",)).backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    assert weights == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
    shared, heads, weights = step(weighting("excess_mtl"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))


def test_the_representation_is_refused_and_the_size_is_fixed():
    with pytest.raises(InputError, match="weighting.gradients"):
        WeightingConfig(name="excess_mtl", gradients="representation")
    with pytest.raises(InputError, match="excess_step"):
        WeightingConfig(name="excess_mtl", excess_step=0.0)
    method = weighting("excess_mtl")
    step(method)
    model = TwoHeads()
    with pytest.raises(ValueError, match="changed size"):
        method.backward(model.losses(X1), [model.shared.weight, model.head_activity])
