"""IMTL (IMTL-G on the gradients of the IMTL-L scaled losses) against gradients differentiated by hand
(the toy problem: tests/weighting_toy.py).

IMTL-G's alpha = K^+ n / (1^T K^+ n), n_t = |g_t|. For two independent gradients at cosine c,
K^{-1} n = (n1 n2^2 (1 - c), n1^2 n2 (1 - c)) / det K, so alpha = (n2, n1) / (n1 + n2) and
d = n1 n2 (u1 + u2) / (n1 + n2): the bisector, with equal projections d . u1 = d . u2.
The paper's form, alpha_2 = g1 . (u1 - u2) / ((g1 - g2) . (u1 - u2)), gives the same.
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.weighting.sources import PARAMETERS, REPRESENTATION
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, step, step_sharing_a_head, TwoHeads, weighting

SQRT2, SQRT5 = math.sqrt(2), math.sqrt(5)


def test_collinear_gradients_on_the_toy():
    method = weighting("imtl")
    assert method.source == PARAMETERS
    shared, heads, weights = step(method)
    # s = 0: the objectives are L_t. g = (4, 8), (6, 12) = a_t (1, 2), a = (4, 6): K = 5 a a^T (rank 1),
    # n = sqrt5 a, K^+ = a a^T / (5 |a|^4) -> K^+ n proportional to a -> alpha = a / (4 + 6) = (0.4, 0.6)
    # (any alpha gives equal projections on collinear gradients; the pseudo-inverse picks this one)
    # d = (0.4 * 4 + 0.6 * 6) (1, 2) = 5.2 (1, 2)
    assert weights == pytest.approx({"activity": 0.4, "segmentation": 0.6})
    assert shared == pytest.approx([5.2, 10.4])
    assert heads == pytest.approx((8.0, 12.0))  # e^0 L_t: each head its own loss's gradient
    # the scales' gradient, from every task's pass: e^{s_t} L_t - 1 = (4 - 1, 3 - 1)
    assert method.loss_scales.grad.tolist() == pytest.approx([3.0, 2.0])


def test_two_gradients_at_an_angle():
    shared, head_b, weights = step_sharing_a_head(weighting("imtl"))
    # g1 = (4, 8, 8), |g1| = 12; g2 = (6, 12, 0), |g2| = 6 sqrt5: alpha = (6 sqrt5, 12) / (12 + 6 sqrt5)
    alpha = (SQRT5 / (2 + SQRT5), 2 / (2 + SQRT5))
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(alpha)
    expected = [alpha[0] * g1 + alpha[1] * g2 for g1, g2 in zip((4, 8, 8), (6, 12, 0))]
    assert shared == pytest.approx(expected)
    d = torch.tensor(shared)
    assert float(d @ torch.tensor([4.0, 8.0, 8.0])) / 12 == pytest.approx(float(d @ torch.tensor([6.0, 12.0, 0.0])) / (6 * SQRT5))
    assert head_b == pytest.approx(12.0)


def test_learned_loss_scales():
    method = weighting("imtl")
    with torch.no_grad():
        method.loss_scales.copy_(torch.tensor([math.log(2.0), 0.0]))
    shared, head_b, weights = step_sharing_a_head(method)
    # objectives 2 L_a - log 2 and L_s: g1 = 2 (4, 8, 8) = (8, 16, 16), |g1| = 24; g2 = (6, 12, 0), 6 sqrt5
    # alpha = (6 sqrt5, 24) / (24 + 6 sqrt5) = (sqrt5, 4) / (4 + sqrt5); reported alpha_t e^{s_t}
    alpha = (SQRT5 / (4 + SQRT5), 4 / (4 + SQRT5))
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([2 * alpha[0], alpha[1]])
    assert shared == pytest.approx([alpha[0] * g1 + alpha[1] * g2 for g1, g2 in zip((8, 16, 16), (6, 12, 0))])
    assert head_b == pytest.approx(12.0)  # e^0 dL_s/db
    # d/ds_t (e^{s_t} L_t - s_t) = e^{s_t} L_t - 1 = (2 * 4 - 1, 3 - 1)
    assert method.loss_scales.grad.tolist() == pytest.approx([7.0, 2.0])


def test_two_conflicting_gradients_directly():
    # g1 = (1, 0), g2 = (-1, 1): n = (1, sqrt2), alpha = (sqrt2, 1) / (1 + sqrt2) = (2 - sqrt2, sqrt2 - 1);
    # the paper's: u1 - u2 = (1 + 1/sqrt2, -1/sqrt2), g1 - g2 = (2, -1):
    # alpha_2 = (1 + 1/sqrt2) / (2 + 3/sqrt2) = (sqrt2 + 1) / (sqrt2 + 1)^2 = sqrt2 - 1
    # d = (2 - sqrt2) (1, 0) + (sqrt2 - 1) (-1, 1) = (3 - 2 sqrt2, sqrt2 - 1); d . u1 = d . u2 = 3 - 2 sqrt2
    direction, weights = weighting("imtl").aggregate(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]), torch.ones(2))
    assert weights.tolist() == pytest.approx([2 - SQRT2, SQRT2 - 1])
    assert direction.tolist() == pytest.approx([3 - 2 * SQRT2, SQRT2 - 1])


def test_three_tasks_directly():
    # g = (1, 0, 0), (1, 1, 0), (0, 0, 2): K = [[1, 1, 0], [1, 2, 0], [0, 0, 4]], n = (1, sqrt2, 2),
    # K^-1 = [[2, -1, 0], [-1, 1, 0], [0, 0, 1/4]], K^-1 n = (2 - sqrt2, sqrt2 - 1, 1/2), sum 3/2
    # d = (1, sqrt2 - 1, 1) / (3/2): d . u_t = 2/3 for every t
    gradients = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    direction, weights = weighting("imtl", tasks=THREE_TASKS).aggregate(gradients, torch.ones(3))
    assert weights.tolist() == pytest.approx([(2 - SQRT2) / 1.5, (SQRT2 - 1) / 1.5, 0.5 / 1.5])
    assert direction.tolist() == pytest.approx([2 / 3, (SQRT2 - 1) / 1.5, 2 / 3])
    assert (gradients @ direction / gradients.norm(dim=1)).tolist() == pytest.approx([2 / 3] * 3)


def test_three_collinear_tasks_on_the_toy():
    # v = (4, 6, -2): as in the two-task case alpha = v / sum(v) = (4, 6, -2) / 8, d = (|v|^2 / 8) x = 7 x
    shared, heads, weights = step(weighting("imtl", tasks=THREE_TASKS))
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.75, "third": -0.25})
    assert shared == pytest.approx([7.0, 14.0])
    assert heads == pytest.approx((8.0, 12.0))


@pytest.mark.parametrize(
    ("x", "expected_weights", "expected_direction"),
    [
        (X1, (0.4, 0.6), 0.4 * 4 + 0.6 * 6),  # dL/dy = (4, 6): alpha = (4, 6) / 10 as above
        (X2, (5 / 14, 9 / 14), (25 + 81) / 14),  # (5, 9): alpha = (5, 9) / 14
    ],
)
def test_the_representation(x, expected_weights, expected_direction):
    method = weighting("imtl", gradients=REPRESENTATION)
    assert method.source == REPRESENTATION
    shared, heads, weights = step(method, x, cut=True)
    assert [weights[task] for task in TASKS] == pytest.approx(expected_weights)
    assert shared == pytest.approx([expected_direction * x[0], expected_direction * x[1]])  # dL/dw = d x
    assert heads == pytest.approx((8.0, 12.0) if x == X1 else (12.5, 6 * 1.5 * 2.5))


def test_zero_and_identical_gradients():
    model = TwoHeads()
    with torch.no_grad():  # a = b = 0: L_a = 0 and dL_s/dw = 6 b (b y - 1) x = 0
        model.head_activity.zero_()
        model.head_segmentation.zero_()
    method = weighting("imtl")
    shared, heads, weights = step(method, model=model)
    assert weights == {"activity": 0.0, "segmentation": 0.0}  # no gradient, no weight
    assert shared == [0.0, 0.0]
    assert all(math.isfinite(value) for value in heads)
    assert method.loss_scales.grad.tolist() == pytest.approx([-1.0, 2.0])  # L = (0, 3)
    for rows, expected_weights, expected_direction in (
        ([[1.0, 2.0], [1.0, 2.0]], (0.5, 0.5), (1.0, 2.0)),  # identical: K^+ n = (1, 1) / (2 sqrt5)
        ([[0.0, 0.0], [1.0, 2.0]], (0.0, 1.0), (1.0, 2.0)),  # a zero gradient gets no weight
    ):
        direction, weights = weighting("imtl").aggregate(torch.tensor(rows), torch.ones(2))
        assert weights.tolist() == pytest.approx(expected_weights)
        assert direction.tolist() == pytest.approx(expected_direction)


def prepare(method):
    with torch.no_grad():
        method.loss_scales.copy_(torch.tensor([0.5, -1.0]))


def test_state_dict_round_trip_gives_the_same_next_gradient():
    trained, resumed, fresh = weighting("imtl"), weighting("imtl"), weighting("imtl")
    prepare(trained)
    resumed.load_state_dict(trained.state_dict())
    assert [name for name, _ in trained.named_parameters()] == ["loss_scales"]

    def next_step(method):
        shared, head_b, weights = step_sharing_a_head(method, X2)
        return [*shared, head_b, *(weights[task] for task in TASKS), *method.loss_scales.grad.tolist()]

    expected = next_step(trained)
    assert next_step(resumed) == pytest.approx(expected)
    assert next_step(fresh)[:3] != pytest.approx(expected[:3])  # the scales are what made the difference


def test_nothing_shared_and_a_single_task():
    method = weighting("imtl")
    with torch.no_grad():
        method.loss_scales.copy_(torch.tensor([math.log(2.0), 0.0]))
    shared, heads, weights = step(method, with_shared=False)
    # a plain backward of (2 L_a - log 2) + L_s: w gets 2 (4, 8) + (6, 12), the heads 2 * 8 and 12
    assert shared == pytest.approx([14.0, 28.0])
    assert heads == pytest.approx((16.0, 12.0))
    assert weights == pytest.approx({"activity": 2.0, "segmentation": 1.0})
    single = weighting("imtl", tasks=("segmentation",))
    model = TwoHeads()
    assert single.backward({"segmentation": model.losses(X1)["segmentation"]}, [model.shared.weight]) == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
