"""The geometric loss strategy against gradients differentiated by hand (the toy problem:
tests/weighting_toy.py). GLS = (prod_t L_t)^(1/T), so dGLS/dL_t = (1/T) (prod L)^(1/T - 1) prod_{s != t} L_s
= GLS / (T L_t): the effective weight of task t."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.config import WeightingConfig
from mtlbench.errors import InputError
from tests.weighting_toy import THREE_TASKS, X1, TwoHeads, step, weighting


def test_two_tasks_by_hand():
    method = weighting("gls")
    shared, heads, weights = step(method, X1)
    # L = (4, 3): GLS = sqrt 12 = 2 sqrt3; w = 2 sqrt3 / (2 * 4), 2 sqrt3 / (2 * 3) = (sqrt3 / 4, sqrt3 / 3)
    root3 = math.sqrt(3)
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([root3 / 4, root3 / 3])
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([0.4330127, 0.5773503])
    # shared = sqrt3 / 4 (4, 8) + sqrt3 / 3 (6, 12) = (3 sqrt3, 6 sqrt3); heads sqrt3 / 4 * 8, sqrt3 / 3 * 12
    assert shared == pytest.approx([3 * root3, 6 * root3])
    assert heads == pytest.approx((2 * root3, 4 * root3))
    objective, _ = method.combine(torch.tensor([4.0, 3.0]))
    assert objective.item() == pytest.approx(2 * root3)


def test_three_tasks_by_hand():
    method = weighting("gls", tasks=THREE_TASKS)
    shared, heads, weights = step(method, X1)
    # L = (4, 3, 1): GLS = 12^(1/3) = 2.2894285; w = GLS / (3 L) = GLS (1/12, 1/9, 1/3)
    gls = 12 ** (1 / 3)
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([gls / 12, gls / 9, gls / 3])
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([0.1907857, 0.2543809, 0.7631428])
    # shared = GLS ((4, 8) / 12 + (6, 12) / 9 + (-2, -4) / 3) = GLS (1/3, 2/3)
    assert shared == pytest.approx([gls / 3, 2 * gls / 3])
    assert heads == pytest.approx((8 * gls / 12, 12 * gls / 9))


def test_the_gradient_is_that_of_the_exact_geometric_mean():
    losses = torch.tensor([0.7, 2.5, 0.05], requires_grad=True)
    objective, weights = weighting("gls", tasks=THREE_TASKS).combine(losses)
    (gradient,) = torch.autograd.grad(objective, losses)
    exact = losses.detach().prod() ** (1 / 3)
    assert objective.item() == pytest.approx(exact.item())
    assert gradient.tolist() == pytest.approx((exact / (3 * losses.detach())).tolist())
    assert weights.tolist() == pytest.approx(gradient.tolist())


def test_it_weighs_losses_not_gradients():
    with pytest.raises(InputError, match="gls weighs the task losses, not gradients"):
        WeightingConfig(name="gls", gradients="parameters")
    assert dict(weighting("gls").state_dict()) == {}


def test_zero_and_identical_losses_and_one_task_stay_finite():
    # x = 0: L = (0, 3) and every gradient is 0; the activity weight GLS / (2 EPS) is large but finite
    shared, heads, weights = step(weighting("gls"), (0.0, 0.0))
    assert shared == [0.0, 0.0] and heads == (0.0, 0.0)
    assert all(math.isfinite(value) for value in weights.values())
    _, weights = weighting("gls").combine(torch.zeros(2))
    assert weights.tolist() == pytest.approx([0.5, 0.5])  # GLS = EPS, w = EPS / (2 EPS)

    # one loss for both tasks: GLS = L, w = (1/2, 1/2), the gradient that of L
    model = TwoHeads()
    loss = model.losses(X1)["activity"]
    weights = weighting("gls").backward({"activity": loss, "segmentation": loss}, list(model.shared.parameters()))
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([4.0, 8.0])

    model = TwoHeads()
    weights = weighting("gls", tasks=("segmentation",)).backward({"segmentation": model.losses(X1)["segmentation"]}, [])
    assert weights == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
