"""MGDA and MGDA-UB against gradients differentiated by hand (the toy problem: tests/weighting_toy.py).

On the toy every task's gradient of w is (dL/dy) x, so the gradients are collinear; sharing the
activity head a as well gives non-collinear ones: (dL/dw1, dL/dw2, dL/da) at X1 is (4, 8, 8)
for activity and (6, 12, 0) for segmentation, so K = [[144, 120], [120, 180]].
For two vectors the min-norm weights are (gamma, 1 - gamma), gamma = (K22 - K12) / (K11 + K22 - 2 K12),
clipped to [0, 1].
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.weighting.sources import PARAMETERS, REPRESENTATION
from tests.weighting_toy import THREE_TASKS, X1, X2, step, step_sharing_a_head, TwoHeads, weighting

SQRT5 = math.sqrt(5)


def test_collinear_gradients_the_shorter_one():
    method = weighting("mgda")
    assert method.source == PARAMETERS
    shared, heads, weights = step(method)
    # g = (4, 8), (6, 12): K = [[80, 120], [120, 180]], K12 = 120 >= K11 = 80: the min-norm point is (4, 8)
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 0.0})
    assert shared == pytest.approx([4.0, 8.0])
    assert heads == pytest.approx((8.0, 12.0))  # each head: its own loss's gradient, unweighted


def test_two_gradients_at_an_angle():
    shared, head_b, weights = step_sharing_a_head(weighting("mgda"))
    # gamma = (180 - 120) / (144 + 180 - 240) = 60 / 84 = 5/7
    # d = 5/7 (4, 8, 8) + 2/7 (6, 12, 0) = (32, 64, 40) / 7
    assert weights == pytest.approx({"activity": 5 / 7, "segmentation": 2 / 7})
    assert shared == pytest.approx([32 / 7, 64 / 7, 40 / 7])
    # the min-norm point of the segment is orthogonal to it: d . g1 = d . g2 = |d|^2 = 960 / 7
    d = torch.tensor(shared)
    assert [float(d @ torch.tensor(g)) for g in ((4.0, 8.0, 8.0), (6.0, 12.0, 0.0))] == pytest.approx([960 / 7, 960 / 7])
    assert float(d @ d) == pytest.approx(960 / 7)
    assert head_b == pytest.approx(12.0)


def loss_plus_gamma():
    # n = L |g| = (4 * 12, 3 * 6 sqrt5) = (48, 18 sqrt5): K~11 = 144 / 48^2 = 1/16, K~22 = 180 / 1620 = 1/9,
    # K~12 = 120 / (48 * 18 sqrt5) = sqrt5 / 36 < K~11: an interior point
    return (1 / 9 - SQRT5 / 36) / (1 / 16 + 1 / 9 - SQRT5 / 18)


@pytest.mark.parametrize(
    ("normalisation", "expected_weights"),
    [
        # |g| = (12, 6 sqrt5): unit vectors, K~ = [[1, c], [c, 1]] -> gamma = 1/2; w = (1/2) / |g|
        ("l2", (1 / 24, 1 / (12 * SQRT5))),
        # L = (4, 3): g~ = (1, 2, 2), (2, 4, 0); K~ = [[9, 10], [10, 20]], K~12 >= K~11 -> lambda = (1, 0), w = (1/4, 0)
        ("loss", (1 / 4, 0.0)),
        ("loss+", (loss_plus_gamma() / 48, (1 - loss_plus_gamma()) / (18 * SQRT5))),
        ("none", (5 / 7, 2 / 7)),
    ],
)
def test_gradient_normalisations(normalisation, expected_weights):
    shared, _, weights = step_sharing_a_head(weighting("mgda", mgda_normalisation=normalisation))
    w_a, w_s = expected_weights
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([w_a, w_s])
    assert shared == pytest.approx([4 * w_a + 6 * w_s, 8 * w_a + 12 * w_s, 8 * w_a])


def test_normalised_collinear_gradients():
    # l2 at X1: both unit gradients are (1, 2) / sqrt5 -> equal weights 1/2 (the solver's choice
    # among the equal minimisers), w = (1/2) / (4 sqrt5, 6 sqrt5), d = (1, 2) / sqrt5
    shared, _, weights = step(weighting("mgda", mgda_normalisation="l2"))
    assert weights == pytest.approx({"activity": 1 / (8 * SQRT5), "segmentation": 1 / (12 * SQRT5)})
    assert shared == pytest.approx([1 / SQRT5, 2 / SQRT5])
    # loss+: g / (L |g|) = (4, 8) / (4 * 4 sqrt5) and (6, 12) / (3 * 6 sqrt5), i.e. (1, 2) / (4 sqrt5)
    # and (1, 2) / (3 sqrt5): the first is shorter -> lambda = (1, 0), w = (1 / (16 sqrt5), 0)
    shared, _, weights = step(weighting("mgda", mgda_normalisation="loss+"))
    assert weights == pytest.approx({"activity": 1 / (16 * SQRT5), "segmentation": 0.0})
    assert shared == pytest.approx([1 / (4 * SQRT5), 2 / (4 * SQRT5)])


def test_three_tasks_with_a_conflict_reach_zero():
    # dL/dy = (4, 6, -2): K = 5 v v^T; 0 is in the hull, every lambda with v . lambda = 0 is a
    # minimiser; the solver's least-norm one over all three free weights: lambda = a 1 + b v with
    # 3a + 8b = 1, 8a + 56b = 0 -> (3, 1, 9) / 13 (4*3 + 6*1 - 2*9 = 0)
    shared, heads, weights = step(weighting("mgda", tasks=THREE_TASKS))
    assert weights == pytest.approx({"activity": 3 / 13, "segmentation": 1 / 13, "third": 9 / 13})
    assert shared == pytest.approx([0.0, 0.0], abs=1e-6)
    assert heads == pytest.approx((8.0, 12.0))


@pytest.mark.parametrize(
    ("x", "tasks", "expected_weights", "expected_direction"),
    [
        # dL/dy = (4, 6): the min-norm point of the segment [4, 6] is 4
        (X1, ("activity", "segmentation"), (1.0, 0.0), 4.0),
        # at X2, dL/dy = (5, 9): 5
        (X2, ("activity", "segmentation"), (1.0, 0.0), 5.0),
        # (4, 6, -2): 0, with the weights above
        (X1, THREE_TASKS, (3 / 13, 1 / 13, 9 / 13), 0.0),
    ],
)
def test_mgda_ub_balances_the_representation(x, tasks, expected_weights, expected_direction):
    method = weighting("mgda", tasks=tasks, gradients=REPRESENTATION)
    assert method.source == REPRESENTATION
    shared, heads, weights = step(method, x, cut=True)
    assert [weights[task] for task in tasks] == pytest.approx(expected_weights)
    assert shared == pytest.approx([expected_direction * x[0], expected_direction * x[1]], abs=1e-6)  # dL/dw = d x
    assert heads == pytest.approx((8.0, 12.0) if x == X1 else (12.5, 6 * 1.5 * 2.5))


def test_mgda_ub_with_normalisation():
    # l2 on dL/dy = (4, 6): both normalise to 1 -> lambda = (1/2, 1/2), w = (1/8, 1/12), d = 1, dL/dw = x
    shared, _, weights = step(weighting("mgda", gradients=REPRESENTATION, mgda_normalisation="l2"), cut=True)
    assert weights == pytest.approx({"activity": 1 / 8, "segmentation": 1 / 12})
    assert shared == pytest.approx([1.0, 2.0])


@pytest.mark.parametrize("normalisation", ["none", "l2", "loss", "loss+"])
def test_zero_gradients(normalisation):
    model = TwoHeads()
    with torch.no_grad():  # a = b = 0: L_a = 0 and dL_s/dw = 6 b (b y - 1) x = 0
        model.head_activity.zero_()
        model.head_segmentation.zero_()
    shared, heads, weights = step(weighting("mgda", mgda_normalisation=normalisation), model=model)
    # K = 0: every lambda is a minimiser, the solver's is (1/2, 1/2); the zero normalisers (|g| = 0,
    # L_a = 0) become 1, and loss divides the segmentation weight by L_s = 3 (b = 0: 3 (0 - 1)^2)
    expected = {"activity": 0.5, "segmentation": 0.5 / 3 if normalisation == "loss" else 0.5}
    assert weights == pytest.approx(expected)
    assert shared == [0.0, 0.0]
    assert all(math.isfinite(value) for value in heads)


@pytest.mark.parametrize(
    ("rows", "expected_weights", "expected_direction"),
    [
        ([[1.0, 2.0], [1.0, 2.0]], (0.5, 0.5), (1.0, 2.0)),  # identical: every lambda gives (1, 2)
        ([[0.0, 0.0], [1.0, 2.0]], (1.0, 0.0), (0.0, 0.0)),  # the zero gradient is the min-norm point
        ([[1.0, 0.0], [0.0, 1.0]], (0.5, 0.5), (0.5, 0.5)),  # orthogonal unit vectors: the midpoint
    ],
)
def test_degenerate_gradients_directly(rows, expected_weights, expected_direction):
    direction, weights = weighting("mgda").aggregate(torch.tensor(rows), torch.ones(2))
    assert direction.tolist() == pytest.approx(expected_direction)
    assert weights.tolist() == pytest.approx(expected_weights)
    for normalisation in ("l2", "loss", "loss+"):
        direction, weights = weighting("mgda", mgda_normalisation=normalisation).aggregate(torch.tensor(rows), torch.ones(2))
        assert not direction.isnan().any() and not weights.isnan().any()


def test_single_task_and_nothing_shared():
    method = weighting("mgda", tasks=("segmentation",), mgda_normalisation="l2")
    model = TwoHeads()
    weights = method.backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    # one task: lambda = 1; l2: w = 1 / |(6, 12)| = 1 / (6 sqrt5), d = (1, 2) / sqrt5
    assert weights == pytest.approx({"segmentation": 1 / (6 * SQRT5)})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([1 / SQRT5, 2 / SQRT5])
    shared, heads, weights = step(weighting("mgda"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0]) and heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_no_state_and_too_many_tasks():
    assert weighting("mgda").state_dict() == {}
    with pytest.raises(ValueError, match="at most 10 tasks; got 11"):
        weighting("mgda", tasks=tuple(f"task{i}" for i in range(11)))
