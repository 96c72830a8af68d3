"""PCGrad against projections worked out by hand (the toy problem: tests/weighting_toy.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.weighting_toy import THREE_TASKS, X1, X2, step, weighting


def fixed_orders(monkeypatch, *orders):
    """Make torch.randperm hand out `orders`, one per call (one call per task, in task order)."""
    pending = [torch.tensor(order) for order in orders]
    monkeypatch.setattr(torch, "randperm", lambda n, *args, **kwargs: pending.pop(0))
    return pending


def test_no_conflict_is_the_plain_sum():
    shared, heads, weights = step(weighting("pcgrad"))
    # (4, 8) . (6, 12) = 120 > 0: nothing is projected; (4, 8) + (6, 12); each head its own task's gradient
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_two_conflicting_tasks_by_hand():
    gradients = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    direction, weights = weighting("pcgrad").aggregate(gradients, torch.ones(2))
    # g1 . g2 = -1 < 0.
    # g1' = g1 - (-1 / ||g2||^2) g2 = (1, 0) + (1/2) (-1, 1) = (1/2, 1/2)  (now orthogonal to g2)
    # g2' = g2 - (-1 / ||g1||^2) g1 = (-1, 1) + (1, 0) = (0, 1)            (now orthogonal to g1)
    # sum (1/2, 3/2) = (1 + 1) g1 + (1 + 1/2) g2
    assert direction.tolist() == pytest.approx([0.5, 1.5])
    assert weights.tolist() == pytest.approx([2.0, 1.5])


@pytest.mark.parametrize(
    ("orders", "expected_direction", "expected_weights"),
    [
        # g1 = (1, 0), g2 = (0, 1), g3 = (-1, -1): g1 . g2 = 0, g1 . g3 = g2 . g3 = -1, ||g3||^2 = 2.
        # task 1 visits g2 (no conflict) then g3: g1' = g1 + g3 / 2 = (1/2, -1/2)
        # task 2 visits g1 (no conflict) then g3: g2' = g2 + g3 / 2 = (-1/2, 1/2)
        # task 3 visits g1: g3 + g1 = (0, -1); then g2: (0, -1) . g2 = -1, + g2: g3' = (0, 0)
        # coefficients: (1, 0, 1/2) + (0, 1, 1/2) + (1, 1, 1) = (2, 2, 2); direction 2 (g1 + g2 + g3) = 0
        ([[0, 1, 2], [0, 1, 2], [0, 1, 2]], [0.0, 0.0], [2.0, 2.0, 2.0]),
        # task 1 visits g3 first: (1/2, -1/2), which now conflicts with g2 ((1/2, -1/2) . g2 = -1/2):
        #   + g2 / 2 -> g1' = (1/2, 0) = g1 + g2 / 2 + g3 / 2
        # task 2 likewise: g2' = (0, 1/2) = g1 / 2 + g2 + g3 / 2; task 3 as above: g1 + g2 + g3 = 0
        # coefficients (5/2, 5/2, 2); direction (1/2, 0) + (0, 1/2) = (1/2, 1/2)
        ([[2, 1, 0], [2, 0, 1], [0, 1, 2]], [0.5, 0.5], [2.5, 2.5, 2.0]),
    ],
)
def test_three_tasks_depend_on_the_visiting_order(monkeypatch, orders, expected_direction, expected_weights):
    pending = fixed_orders(monkeypatch, *orders)
    gradients = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    direction, weights = weighting("pcgrad", tasks=THREE_TASKS).aggregate(gradients, torch.ones(3))
    assert direction.tolist() == pytest.approx(expected_direction)
    assert weights.tolist() == pytest.approx(expected_weights)
    assert not pending  # one permutation per task


def test_three_toy_tasks_cancel_whatever_the_order():
    # At x = (1, 2) the gradients are 4u, 6u, -2u with u = (1, 2), ||u||^2 = 5.
    # g1 . g3 = -40: g1' = g1 + (40 / 20) g3 = 0 (g2 does not conflict, before or after)
    # g2 . g3 = -60: g2' = g2 + (60 / 20) g3 = 0
    # g3 meets g1 or g2 first: g3 + (40 / 80) g1 = 0 or g3 + (60 / 180) g2 = 0
    # so the shared gradient is 0, with weights (1 + 1/2, 1, 1 + 2 + 3) or (1, 1 + 1/3, 6)
    for seed in range(4):
        torch.manual_seed(seed)
        shared, heads, weights = step(weighting("pcgrad", tasks=THREE_TASKS))
        assert shared == pytest.approx([0.0, 0.0], abs=1e-6)
        assert heads == pytest.approx((8.0, 12.0))  # heads: the sum of the task gradients, untouched
        assert [weights[task] for task in THREE_TASKS] in (pytest.approx([1.5, 1.0, 6.0]), pytest.approx([1.0, 4 / 3, 6.0]))


def test_the_orders_come_from_the_global_generator():
    gradients = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    method = weighting("pcgrad", tasks=THREE_TASKS)
    results = set()
    for seed in (0, 0, 1, 2, 3, 4, 5):
        torch.manual_seed(seed)
        results.add(tuple(method.aggregate(gradients, torch.ones(3))[1].tolist()))
    assert len(results) > 1  # the orders vary with the seed ...
    torch.manual_seed(7)
    first = method.aggregate(gradients, torch.ones(3))
    torch.manual_seed(7)
    again = method.aggregate(gradients, torch.ones(3))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])  # ... and a seed fixes them


def test_representation_path():
    method = weighting("pcgrad", gradients="representation")
    shared, heads, weights = step(method, X2, cut=True)
    # dL/dy = (5, 9), no conflict: the representation gets 14, and w.grad = 14 x = (28, 14)
    assert shared == pytest.approx([28.0, 14.0])
    assert heads == pytest.approx((2 * 6.25, 6 * 1.5 * 2.5))  # 2 a y^2, 6 (b y - 1) y at y = 2.5
    assert weights == {"activity": 1.0, "segmentation": 1.0}
    # three tasks, dL/dy = (4, 6, -2): every task's gradient is projected to 0, as above
    shared, heads, _ = step(weighting("pcgrad", tasks=THREE_TASKS, gradients="representation"), X1, cut=True)
    assert shared == pytest.approx([0.0, 0.0], abs=1e-6)
    assert heads == pytest.approx((8.0, 12.0))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]),  # zero gradients
        ([[0.0, 0.0], [-1.0, 2.0]], [-1.0, 2.0]),  # one zero gradient: no conflict with it
        ([[3.0, -1.0], [3.0, -1.0]], [6.0, -2.0]),  # identical gradients
        ([[1.0, 2.0], [-1.0, -2.0]], [0.0, 0.0]),  # opposite gradients cancel
    ],
)
def test_degenerate_gradients_stay_finite(rows, expected):
    direction, weights = weighting("pcgrad").aggregate(torch.tensor(rows), torch.ones(2))
    assert direction.tolist() == pytest.approx(expected)
    assert all(math.isfinite(w) for w in weights.tolist())


def test_single_task_and_nothing_shared():
    method = weighting("pcgrad", tasks=("segmentation",))
    direction, weights = method.aggregate(torch.tensor([[6.0, 12.0]]), torch.ones(1))
    assert direction.tolist() == [6.0, 12.0] and weights.tolist() == [1.0]
    shared, heads, weights = step(weighting("pcgrad"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0])  # a plain backward of the summed losses
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_no_state():
    assert weighting("pcgrad").state_dict() == {}
