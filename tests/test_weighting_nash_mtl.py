"""Nash-MTL against weights solved by hand (the toy problem: tests/weighting_toy.py).

Every gradient of the toy is a multiple of x: g_t = c_t x. Then K = |x|^2 c c^T and K alpha = 1/alpha
reads alpha_t c_t s |x|^2 = 1 with s = sum_u c_u alpha_u, so alpha_t = 1 / (c_t s |x|^2), and
s = sum_u c_u alpha_u = T / (s |x|^2) gives s = sqrt(T) / |x| (all c_t of one sign) and the
direction d = s x, of norm sqrt(T).
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

CLIP_GUARD = 1e-6  # torch.nn.utils.clip_grad_norm_ divides max_norm by |d| + 1e-6


def test_diagonal_gram_gives_inverse_gradient_norms():
    # K = diag(4, 9): alpha_t K_tt alpha_t = 1 -> alpha = (1/2, 1/3)
    assert fair_weights(np.diag([4.0, 9.0])) == pytest.approx([0.5, 1 / 3], rel=1e-9)
    # the authors divide K by its norm n = sqrt(16 + 81) and then solve with n in the constraints:
    # the weights solve the unnormalised condition, so scaling K by 100 scales them by 1/10
    assert fair_weights(np.diag([400.0, 900.0])) == pytest.approx([0.05, 1 / 30], rel=1e-9)


def test_two_by_two_solved_on_paper():
    # K = [[1, 1], [1, 4]]: a (a + b) = 1 and b (a + 4 b) = 1. The first gives b = 1/a - a, the
    # second (1/a - a)(4/a - 3a) = 1, i.e. 3a^4 - 8a^2 + 4 = 0, a^2 = 2/3 or 2; b > 0 needs a < 1:
    # a = sqrt(2/3) = 0.816497, b = sqrt(3/2) - sqrt(2/3) = 1/sqrt(6) = 0.408248
    assert fair_weights(np.array([[1.0, 1.0], [1.0, 4.0]])) == pytest.approx([math.sqrt(2 / 3), 1 / math.sqrt(6)], rel=1e-9)
    # the same Gram from gradients (1, 0) and (1, sqrt 3): d = a (1, 0) + b (1, sqrt 3)
    # = (3/sqrt 6, 1/sqrt 2) = (1.224745, 0.707107), |d|^2 = 3/2 + 1/2 = 2 = T
    method = weighting("nash_mtl", nash_max_norm=0.0)
    direction, weights = method.aggregate(torch.tensor([[1.0, 0.0], [1.0, math.sqrt(3)]]), torch.ones(2))
    assert direction.tolist() == pytest.approx([3 / math.sqrt(6), 1 / math.sqrt(2)])
    assert weights.tolist() == pytest.approx([math.sqrt(2 / 3), 1 / math.sqrt(6)])


def test_orthogonal_gradients_are_clipped_to_max_norm():
    # g = (2, 0), (0, 3): alpha = (1/2, 1/3), d = (1, 1) of norm sqrt 2, clipped to norm 1 (minus the guard)
    method = weighting("nash_mtl")
    direction, weights = method.aggregate(torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.ones(2))
    assert weights.tolist() == pytest.approx([0.5, 1 / 3])
    assert direction.tolist() == pytest.approx([1 / (math.sqrt(2) + CLIP_GUARD)] * 2)
    # a larger max_norm leaves d alone
    assert weighting("nash_mtl", nash_max_norm=2.0).aggregate(torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.ones(2))[0].tolist() == pytest.approx([1.0, 1.0])


def test_toy_step_by_hand():
    # X1: g = (4, 8), (6, 12) = 4 x, 6 x with x = (1, 2), |x|^2 = 5; s = sqrt(2/5)
    # alpha = 1 / (c s 5) = (1 / (4 sqrt 10), 1 / (6 sqrt 10)) = (0.0790569, 0.0527046)
    # d = s x = (0.632456, 1.264911), |d| = sqrt 2
    shared, heads, weights = step(weighting("nash_mtl", nash_max_norm=0.0))
    assert [weights[task] for task in TASKS] == pytest.approx([1 / (4 * math.sqrt(10)), 1 / (6 * math.sqrt(10))])
    assert [weights[task] for task in TASKS] == pytest.approx([0.0790569, 0.0527046], rel=1e-5)
    assert shared == pytest.approx([math.sqrt(0.4), 2 * math.sqrt(0.4)])
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients
    # the default clip (1.0): d / (sqrt 2 + 1e-6) = (0.447213, 0.894427)
    shared, heads, _ = step(weighting("nash_mtl"))
    factor = 1 / (math.sqrt(2) + CLIP_GUARD)
    assert shared == pytest.approx([math.sqrt(0.4) * factor, 2 * math.sqrt(0.4) * factor])
    assert heads == pytest.approx((8.0, 12.0))


def test_representation_path():
    # dL/dy = (4, 6): K = [[16, 24], [24, 36]], |x|^2 -> 1: s = sqrt 2, alpha = (1 / (4 sqrt 2), 1 / (6 sqrt 2))
    # d = sqrt 2 (the representation's gradient); w.grad = d x = sqrt 2 (1, 2)
    method = weighting("nash_mtl", gradients="representation", nash_max_norm=0.0)
    shared, heads, weights = step(method, cut=True)
    assert [weights[task] for task in TASKS] == pytest.approx([1 / (4 * math.sqrt(2)), 1 / (6 * math.sqrt(2))])
    assert shared == pytest.approx([math.sqrt(2), 2 * math.sqrt(2)])
    assert heads == pytest.approx((8.0, 12.0))


def test_weights_are_reused_between_solves():
    method = weighting("nash_mtl", nash_update_every=2, nash_max_norm=0.0)
    at_x1 = [1 / (4 * math.sqrt(10)), 1 / (6 * math.sqrt(10))]
    weights = step(method, X1)[2]
    assert [weights[task] for task in TASKS] == pytest.approx(at_x1)
    # step 2 at X2 reuses them: d = alpha_a (10, 5) + alpha_s (18, 9)
    # = (10/4 + 18/6, 5/4 + 9/6) / sqrt 10 = (5.5, 2.75) / sqrt 10 = (1.739253, 0.869626)
    shared, _, weights = step(method, X2)
    assert [weights[task] for task in TASKS] == pytest.approx(at_x1)
    assert shared == pytest.approx([5.5 / math.sqrt(10), 2.75 / math.sqrt(10)])
    # step 3 solves at X2: g = 5 (2, 1), 9 (2, 1), |x|^2 = 5, s = sqrt(2/5): alpha = (1 / (5 sqrt 10), 1 / (9 sqrt 10))
    shared, _, weights = step(method, X2)
    assert [weights[task] for task in TASKS] == pytest.approx([1 / (5 * math.sqrt(10)), 1 / (9 * math.sqrt(10))])
    assert shared == pytest.approx([2 * math.sqrt(0.4), math.sqrt(0.4)])


def test_state_dict_round_trip_continues_the_cycle():
    trained = weighting("nash_mtl", nash_update_every=2, nash_max_norm=0.0)
    step(trained, X1)
    resumed = weighting("nash_mtl", nash_update_every=2, nash_max_norm=0.0)
    resumed.load_state_dict(trained.state_dict())
    fresh = weighting("nash_mtl", nash_update_every=2, nash_max_norm=0.0)
    expected = step(trained, X2)
    assert step(resumed, X2) == expected  # the X1 weights, reused
    assert step(fresh, X2)[0] != pytest.approx(expected[0])  # a fresh one solves at X2
    assert step(resumed, X2) == step(trained, X2)  # and both solve on the third step


def test_three_tasks_without_a_common_improving_direction_stay_finite():
    # X1: g = 4 x, 6 x, -2 x: no alpha > 0 gives every task g_t . d > 0, so K alpha = 1/alpha has
    # no solution; the floored problem gives large weights and d about zero, never NaN
    shared, heads, weights = step(weighting("nash_mtl", tasks=THREE_TASKS, nash_max_norm=0.0))
    assert all(math.isfinite(value) and value > 0 for value in weights.values())
    assert shared == pytest.approx([0.0, 0.0], abs=1e-2)
    assert heads == pytest.approx((8.0, 12.0))


def test_three_orthogonal_tasks():
    # g = (1, 0, 0), (0, 2, 0), (0, 0, 4): alpha = (1, 1/2, 1/4), d = (1, 1, 1), |d| = sqrt 3
    method = weighting("nash_mtl", tasks=THREE_TASKS, nash_max_norm=0.0)
    direction, weights = method.aggregate(torch.diag(torch.tensor([1.0, 2.0, 4.0])), torch.ones(3))
    assert weights.tolist() == pytest.approx([1.0, 0.5, 0.25])
    assert direction.tolist() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("gradients", "expected_weights", "expected_direction"),
    [
        ([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0], [0.0, 0.0]),  # nothing to weigh
        ([[0.0, 0.0], [3.0, 4.0]], [0.0, 0.2], [0.6, 0.8]),  # the zero task gets 0; the other 1/|g|
        # identical: K = 25 [[1, 1], [1, 1]], alpha_1 = alpha_2 = a, 50 a^2 = 1, d = 2a (3, 4) = sqrt 2 (0.6, 0.8)
        ([[3.0, 4.0], [3.0, 4.0]], [1 / math.sqrt(50)] * 2, [0.6 * math.sqrt(2), 0.8 * math.sqrt(2)]),
    ],
)
def test_degenerate_gradients(gradients, expected_weights, expected_direction):
    method = weighting("nash_mtl", nash_max_norm=0.0)
    direction, weights = method.aggregate(torch.tensor(gradients), torch.ones(2))
    assert weights.tolist() == pytest.approx(expected_weights, rel=1e-6, abs=1e-12)
    assert direction.tolist() == pytest.approx(expected_direction, rel=1e-6, abs=1e-12)


def test_opposite_gradients_give_about_no_direction():
    direction, weights = weighting("nash_mtl").aggregate(torch.tensor([[3.0, 4.0], [-3.0, -4.0]]), torch.ones(2))
    assert torch.isfinite(weights).all() and (weights > 0).all()
    assert direction.norm() < 1e-3


def test_zero_gradients_through_backward():
    # x = (0, 0): y = 0, every shared gradient is 0; heads: dL_a/da = 0, dL_s/db = 6 (b y - 1) y = 0
    shared, heads, weights = step(weighting("nash_mtl"), x=(0.0, 0.0))
    assert shared == [0.0, 0.0]
    assert heads == (0.0, 0.0)
    assert weights == {"activity": 0.0, "segmentation": 0.0}


def test_single_task():
    # alpha = 1 / |g| = 1 / sqrt 180, d = g / |g| = (1, 2) / sqrt 5 of norm 1, clipped by 1 / (1 + 1e-6)
    method = weighting("nash_mtl", tasks=("segmentation",))
    model = TwoHeads()
    weights = method.backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    assert weights == pytest.approx({"segmentation": 1 / math.sqrt(180)})
    factor = 1 / (1 + CLIP_GUARD)
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([factor / math.sqrt(5), 2 * factor / math.sqrt(5)])


def test_empty_shared_is_a_plain_backward():
    shared, heads, weights = step(weighting("nash_mtl"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_settings_are_checked():
    with pytest.raises(InputError, match="nash_update_every"):
        WeightingConfig(name="nash_mtl", nash_update_every=0)
    with pytest.raises(InputError, match="nash_max_norm"):
        WeightingConfig(name="nash_mtl", nash_max_norm=-1.0)
