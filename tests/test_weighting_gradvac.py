"""GradVac against corrections worked out by hand (the toy problem: tests/weighting_toy.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, step, weighting

BETA = 0.01


def with_targets(value: float, tasks=TASKS, **settings):
    method = weighting("gradvac", tasks=tasks, **settings)
    method.targets.fill_(value).fill_diagonal_(0.0)
    return method


def test_aligned_tasks_are_summed_and_raise_their_target():
    method = weighting("gradvac")
    assert method.config.gradvac_beta == BETA
    shared, heads, weights = step(method)
    # (4, 8) and (6, 12): cosine 1, not below the initial target 0, so no correction
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients
    assert weights == {"activity": 1.0, "segmentation": 1.0}
    # targets: (1 - beta) 0 + beta 1 = beta, both ways
    assert method.targets.flatten().tolist() == pytest.approx([0.0, BETA, BETA, 0.0])


def test_fresh_targets_make_it_pcgrad():
    method = weighting("gradvac")
    direction, weights = method.aggregate(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]), torch.ones(2))
    # target 0: w = ||g_i|| (0 - c) / ||g_j|| = -(g_i . g_j) / ||g_j||^2, PCGrad's projection.
    # c = -1/sqrt2; g1' = g1 + (1/2) g2 = (1/2, 1/2); g2' = g2 + g1 = (0, 1); sum (1/2, 3/2)
    assert direction.tolist() == pytest.approx([0.5, 1.5])
    assert weights.tolist() == pytest.approx([2.0, 1.5])
    # targets: beta c = -0.01 / sqrt2 for both pairs (task 2 meets g1 before any change to g2)
    assert method.targets.flatten().tolist() == pytest.approx([0.0, -BETA / math.sqrt(2), -BETA / math.sqrt(2), 0.0])


def test_orthogonal_gradients_are_lifted_to_the_target():
    method = with_targets(0.5)
    direction, weights = method.aggregate(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2))
    # c = 0 < 0.5: w = 1 (0.5 sqrt(1 - 0) - 0) / (1 sqrt(1 - 0.25)) = 0.5 / (sqrt3 / 2) = 1/sqrt3
    # g1' = (1, 1/sqrt3): cosine with g2 = (1/sqrt3) / sqrt(4/3) = 1/2, the target; g2' = (1/sqrt3, 1)
    lift = 1 / math.sqrt(3)
    assert direction.tolist() == pytest.approx([1 + lift, 1 + lift])
    assert weights.tolist() == pytest.approx([1 + lift, 1 + lift])
    # targets: 0.99 * 0.5 + 0.01 * 0 = 0.495
    assert method.targets.flatten().tolist() == pytest.approx([0.0, 0.495, 0.495, 0.0])


def test_general_correction_by_hand():
    method = with_targets(0.9)
    g1, g2 = (1.0, 0.0), (1.0, 1.0)
    direction, weights = method.aggregate(torch.tensor([g1, g2]), torch.ones(2))
    # c = 1/sqrt2 (so sqrt(1 - c^2) = 1/sqrt2 too), target 0.9, s = sqrt(1 - 0.81) = sqrt(0.19)
    # task 1: + w12 g2, w12 = ||g1|| (0.9 / sqrt2 - s / sqrt2) / (||g2|| s) = (0.9 - s) / (2 s)
    # task 2: + w21 g1, w21 = ||g2|| (0.9 - s) / sqrt2 / (||g1|| s) = (0.9 - s) / s
    s = math.sqrt(0.19)
    w12, w21 = (0.9 - s) / (2 * s), (0.9 - s) / s
    assert (w12, w21) == pytest.approx((0.5323709, 1.0647418))
    # g1' = (1 + w12, w12): its cosine with g2 is the target
    assert (1 + 2 * w12) / (math.sqrt(2) * math.hypot(1 + w12, w12)) == pytest.approx(0.9)
    # sum: (1 + w21) g1 + (1 + w12) g2 = (2 + w21 + w12, 1 + w12)
    assert direction.tolist() == pytest.approx([2 + w21 + w12, 1 + w12])
    assert weights.tolist() == pytest.approx([1 + w21, 1 + w12])
    # targets: 0.99 * 0.9 + 0.01 / sqrt2
    assert method.targets[0, 1].item() == pytest.approx(0.891 + BETA / math.sqrt(2))
    assert method.targets[1, 0].item() == pytest.approx(0.891 + BETA / math.sqrt(2))


def test_three_toy_tasks_in_a_fixed_order(monkeypatch):
    orders = [torch.tensor(order) for order in ([0, 1, 2], [2, 0, 1], [0, 1, 2])]
    monkeypatch.setattr(torch, "randperm", lambda n, *args, **kwargs: orders.pop(0))
    method = weighting("gradvac", tasks=THREE_TASKS)
    shared, heads, weights = step(method)
    # At x = (1, 2): 4u, 6u, -2u, u = (1, 2), ||u|| = sqrt5; fresh targets 0.
    # task 1 meets g2: c = 1, no correction, t12 = beta; then g3: c = -1, w = ||g1|| (0 + 1) / ||g3|| = 2,
    #   g1' = g1 + 2 g3 = 0, t13 = -beta
    # task 2 meets g3: c = -1, w = 6 / 2 = 3, g2' = 0, t23 = -beta; then g1: g2' = 0 has cosine 0, t21 = 0
    # task 3 meets g1: c = -1, w = 2 / 4 = 1/2, g3' = 0, t31 = -beta; then g2: cosine 0, t32 = 0
    # coefficients (1, 0, 2) + (0, 1, 3) + (1/2, 0, 1) = (3/2, 1, 6): 6u + 6u - 12u = 0
    assert not orders
    assert shared == pytest.approx([0.0, 0.0], abs=1e-5)
    assert heads == pytest.approx((8.0, 12.0))
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([1.5, 1.0, 6.0])
    assert method.targets.flatten().tolist() == pytest.approx([0.0, BETA, -BETA, 0.0, 0.0, -BETA, -BETA, 0.0, 0.0])


def test_representation_path():
    method = weighting("gradvac", gradients="representation")
    shared, heads, weights = step(method, X2, cut=True)
    # dL/dy = (5, 9), cosine 1: the representation gets 14, and w.grad = 14 x = (28, 14)
    assert shared == pytest.approx([28.0, 14.0])
    assert heads == pytest.approx((12.5, 22.5))  # 2 a y^2, 6 (b y - 1) y at y = 2.5
    assert weights == {"activity": 1.0, "segmentation": 1.0}
    assert method.targets[0, 1].item() == pytest.approx(BETA)


def test_state_dict_round_trip_gives_the_same_next_gradient():
    def prepared():
        method = with_targets(0.9)
        method.aggregate(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.ones(2))
        return method

    trained, resumed, fresh = prepared(), weighting("gradvac"), weighting("gradvac")
    resumed.load_state_dict(trained.state_dict())
    assert torch.equal(resumed.targets, trained.targets)
    gradients = torch.tensor([[2.0, 1.0], [0.0, 1.0]])  # cosine 1/sqrt5 ~ 0.447, below the ~0.898 targets
    expected = trained.aggregate(gradients, torch.ones(2))
    got = resumed.aggregate(gradients, torch.ones(2))
    assert got[0].tolist() == pytest.approx(expected[0].tolist())
    assert got[1].tolist() == pytest.approx(expected[1].tolist())
    assert torch.equal(resumed.targets, trained.targets)
    assert fresh.aggregate(gradients, torch.ones(2))[0].tolist() == pytest.approx([2.0, 2.0])  # no targets: the sum
    assert expected[0].tolist() != pytest.approx([2.0, 2.0])


def test_identical_gradients_do_not_blow_up_as_the_target_reaches_one():
    method = weighting("gradvac", gradvac_beta=1.0)
    gradients = torch.tensor([[3e3, -4e3, 1.0], [3e3, -4e3, 1.0]])
    for _ in range(20):  # beta = 1: the targets are the last cosine, 1 up to rounding
        direction, weights = method.aggregate(gradients, torch.ones(2))
        assert direction.tolist() == pytest.approx([6e3, -8e3, 2.0])
        assert weights.tolist() == pytest.approx([1.0, 1.0])
    assert method.targets[0, 1].item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]),  # zero gradients: cosine 0, nothing to add
        ([[0.0, 0.0], [1.0, 0.0]], [1.0, 0.0]),  # one zero gradient: neither gets a correction
        ([[1.0, 2.0], [-1.0, -2.0]], [0.0, 0.0]),  # opposite: c = -1, w = 1 each way, both cancel
    ],
)
def test_degenerate_gradients_stay_finite(rows, expected):
    method = with_targets(0.5)
    direction, weights = method.aggregate(torch.tensor(rows), torch.ones(2))
    assert direction.tolist() == pytest.approx(expected, abs=1e-6)
    assert all(math.isfinite(w) for w in weights.tolist())
    assert torch.isfinite(method.targets).all()


def test_single_task():
    method = weighting("gradvac", tasks=("segmentation",))
    direction, weights = method.aggregate(torch.tensor([[6.0, 12.0]]), torch.ones(1))
    assert direction.tolist() == [6.0, 12.0] and weights.tolist() == [1.0]
    assert method.targets.tolist() == [[0.0]]
    shared, _, _ = step(weighting("gradvac"), X1, with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])  # nothing shared: a plain backward of the sum
