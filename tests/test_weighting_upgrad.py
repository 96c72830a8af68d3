"""UPGrad against gradients differentiated by hand (the toy problem: tests/weighting_toy.py).

UPGrad's weights are w = sum_i v_i with v_i = argmin_{v >= e_i / T} v^T K' v, K' = K / tr(K) + eps I.
When no two gradients conflict (every entry of K >= 0), K' v >= 0 at v = e_i / T, so every bound
is active, v_i = e_i / T and UPGrad is the mean of the gradients.
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.weighting.sources import PARAMETERS, REPRESENTATION
from tests.weighting_toy import THREE_TASKS, X1, X2, step, step_sharing_a_head, TwoHeads, weighting

EPS = 1e-4  # upgrad_reg_eps's default


def test_non_conflicting_gradients_give_their_mean():
    method = weighting("upgrad")
    assert method.source == PARAMETERS
    shared, heads, weights = step(method)
    # (4, 8) and (6, 12) agree: w = (1/2, 1/2), the mean (5, 10)
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})
    assert shared == pytest.approx([5.0, 10.0])
    assert heads == pytest.approx((8.0, 12.0))  # each head: its own loss's gradient, unweighted
    # non-collinear but agreeing: (4, 8, 8) . (6, 12, 0) = 120 > 0 -> the mean (5, 10, 4)
    shared, head_b, weights = step_sharing_a_head(weighting("upgrad"))
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})
    assert shared == pytest.approx([5.0, 10.0, 4.0])
    assert head_b == pytest.approx(12.0)


def three_task_weights(eps):
    """By hand for dL/dy = v = (4, 6, -2) at X1: K = 5 v v^T, tr K = 5 * 56, K' = v v^T / 56 + eps I,
    so v^T K' v = s^2 / 56 + eps |x|^2 with s = v . x.
    i = 1, x >= (1/3, 0, 0): x1 = 1/3 and x2 = 0 held, x3 free: d/dx3 = -s / 14 + 2 eps x3 = 0 with
      s = 4/3 - 2 x3 -> x3 = (4/3) / (2 + 28 eps) (multipliers s / 7 + 2 eps / 3 and 3 s / 14, both >= 0).
    i = 2, x >= (0, 1/3, 0): s = 2 - 2 x3 = 28 eps x3 -> x3 = 1 / (1 + 14 eps), x = (0, 1/3, x3).
    i = 3, x >= (0, 0, 1/3): x1, x2 free: s / 7 + 2 eps x1 = 0 and 3 s / 14 + 2 eps x2 = 0 with
      s = -2/3 + 4 x1 + 6 x2 -> s = -(2/3) 14 eps / (13 + 14 eps), x1 = (2/3) / (13 + 14 eps), x2 = 1 / (13 + 14 eps)
      (multiplier of x3: -s / 14 + 2 eps / 3 > 0)."""
    return (
        1 / 3 + (2 / 3) / (13 + 14 * eps),
        1 / 3 + 1 / (13 + 14 * eps),
        (4 / 3) / (2 + 28 * eps) + 1 / (1 + 14 * eps) + 1 / 3,
    )


def test_three_tasks_with_a_conflict():
    shared, heads, weights = step(weighting("upgrad", tasks=THREE_TASKS))
    w = three_task_weights(EPS)
    assert [weights[task] for task in THREE_TASKS] == pytest.approx(w, rel=1e-5)
    # d = (w . v) x; without the ridge w = (15/39, 16/39, 2) and w . v = 0: nothing is left to
    # move along without increasing a loss
    along = 4 * w[0] + 6 * w[1] - 2 * w[2]
    assert shared == pytest.approx([along * X1[0], along * X1[1]], rel=1e-4)
    assert three_task_weights(0.0) == pytest.approx((15 / 39, 16 / 39, 2.0))
    assert 4 * 15 / 39 + 6 * 16 / 39 - 2 * 2 == pytest.approx(0.0)
    assert heads == pytest.approx((8.0, 12.0))


def test_two_conflicting_gradients_directly():
    # g1 = (1, 0), g2 = (-1, 1): K = [[1, -1], [-1, 2]], tr 3; without the ridge
    # v1 = (1/2, 1/4): v1_1 held at 1/2, -1/2 + 2 v1_2 = 0 (its projection (1/4, 1/4))
    # v2 = (1/2, 1/2): v2_2 held at 1/2, v2_1 - 1/2 = 0 (its projection (0, 1/2))
    # w = (1, 3/4), d = (1, 0) + 3/4 (-1, 1) = (1/4, 3/4): g1 . d = 1/4 >= 0, g2 . d = 1/2 >= 0
    gradients = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    direction, weights = weighting("upgrad", upgrad_reg_eps=0.0).aggregate(gradients, torch.ones(2))
    assert weights.tolist() == pytest.approx([1.0, 0.75])
    assert direction.tolist() == pytest.approx([0.25, 0.75])
    # the default ridge (on K / 3) moves them a little
    direction, weights = weighting("upgrad").aggregate(gradients, torch.ones(2))
    assert weights.tolist() == pytest.approx([1.0, 0.75], abs=1e-3)
    assert all(float(g @ direction) >= 0 for g in gradients)


def test_a_tiny_gramian_counts_as_zero():
    # tr K = 3e-6 < norm_eps = 1e-4: K' = eps I, v_i = e_i / 2, the mean weights
    gradients = 1e-3 * torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    direction, weights = weighting("upgrad").aggregate(gradients, torch.ones(2))
    assert weights.tolist() == pytest.approx([0.5, 0.5])
    assert direction.tolist() == pytest.approx([0.0, 0.5e-3])
    # with a smaller norm_eps the projection happens as at full scale (the trace normalises it away)
    _, weights = weighting("upgrad", upgrad_norm_eps=1e-7, upgrad_reg_eps=0.0).aggregate(gradients, torch.ones(2))
    assert weights.tolist() == pytest.approx([1.0, 0.75])


@pytest.mark.parametrize(
    ("x", "tasks", "expected_weights"),
    [
        (X1, ("activity", "segmentation"), (0.5, 0.5)),  # dL/dy = (4, 6): the mean, 5
        (X2, ("activity", "segmentation"), (0.5, 0.5)),  # (5, 9): 7
        # (4, 6, -2): the Gram matrix is that of the parameters' divided by |x|^2; the trace
        # normalisation removes the factor, so the weights are those above
        (X1, THREE_TASKS, three_task_weights(EPS)),
    ],
)
def test_the_representation(x, tasks, expected_weights):
    method = weighting("upgrad", tasks=tasks, gradients=REPRESENTATION)
    assert method.source == REPRESENTATION
    shared, heads, weights = step(method, x, cut=True)
    assert [weights[task] for task in tasks] == pytest.approx(expected_weights, rel=1e-5)
    dl_dy = {X1: (4.0, 6.0, -2.0), X2: (5.0, 9.0, -1.0)}[x]
    along = sum(w * g for w, g in zip(expected_weights, dl_dy))
    assert shared == pytest.approx([along * x[0], along * x[1]], rel=1e-4)  # dL/dw = d x
    assert heads == pytest.approx((8.0, 12.0) if x == X1 else (12.5, 6 * 1.5 * 2.5))


def test_zero_and_identical_gradients():
    model = TwoHeads()
    with torch.no_grad():  # a = b = 0: L_a = 0 and dL_s/dw = 6 b (b y - 1) x = 0
        model.head_activity.zero_()
        model.head_segmentation.zero_()
    shared, heads, weights = step(weighting("upgrad"), model=model)
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})  # tr K = 0 < norm_eps
    assert shared == [0.0, 0.0]
    assert all(math.isfinite(value) for value in heads)
    for rows, expected in (([[1.0, 2.0], [1.0, 2.0]], (1.0, 2.0)), ([[0.0, 0.0], [1.0, 2.0]], (0.5, 1.0))):
        for reg in (0.0, EPS):  # identical rows: the mean; a zero row conflicts with nothing
            direction, weights = weighting("upgrad", upgrad_reg_eps=reg).aggregate(torch.tensor(rows), torch.ones(2))
            assert weights.tolist() == pytest.approx([0.5, 0.5])
            assert direction.tolist() == pytest.approx(expected)


def test_single_task_and_nothing_shared():
    method = weighting("upgrad", tasks=("segmentation",))
    model = TwoHeads()
    weights = method.backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    assert weights == pytest.approx({"segmentation": 1.0})  # v >= 1 with K' = 1 + eps: v = 1
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
    shared, heads, weights = step(weighting("upgrad"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0]) and heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_no_state_and_too_many_tasks():
    assert weighting("upgrad").state_dict() == {}
    with pytest.raises(ValueError, match="at most 10 tasks; got 11"):
        weighting("upgrad", tasks=tuple(f"task{i}" for i in range(11)))
