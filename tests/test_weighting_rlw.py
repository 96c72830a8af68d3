"""Random loss weighting against gradients differentiated by hand (the toy problem:
tests/weighting_toy.py): w = softmax(e), e drawn with torch.randn from the global generator, and
the gradient sum_t w_t grad L_t."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.config import WeightingConfig
from mtlbench.errors import InputError
from tests.weighting_toy import THREE_TASKS, X1, TwoHeads, step, weighting


def softmax_by_hand(draws):
    exponentials = [math.exp(value) for value in draws]
    return [value / sum(exponentials) for value in exponentials]


def test_two_steps_use_the_global_generator():
    torch.manual_seed(0)
    first, second = torch.randn(2).tolist(), torch.randn(2).tolist()
    w1, w2 = softmax_by_hand(first), softmax_by_hand(second)
    method = weighting("rlw")
    models = TwoHeads(), TwoHeads()  # their initialisation draws from the generator too: made first
    torch.manual_seed(0)
    shared, heads, weights = step(method, X1, model=models[0])
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(w1)
    assert sum(weights.values()) == pytest.approx(1.0)
    # w_a (4, 8) + w_s (6, 12); heads w_a 8, w_s 12
    assert shared == pytest.approx([4 * w1[0] + 6 * w1[1], 8 * w1[0] + 12 * w1[1]])
    assert heads == pytest.approx((8 * w1[0], 12 * w1[1]))
    # the next step draws anew
    shared, heads, weights = step(method, X1, model=models[1])
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(w2)
    assert shared == pytest.approx([4 * w2[0] + 6 * w2[1], 8 * w2[0] + 12 * w2[1]])
    assert w1 != pytest.approx(w2)


def test_three_tasks():
    torch.manual_seed(3)
    w = softmax_by_hand(torch.randn(3).tolist())
    model = TwoHeads(THREE_TASKS)
    torch.manual_seed(3)
    shared, heads, weights = step(weighting("rlw", tasks=THREE_TASKS), X1, model=model)
    assert [weights[task] for task in THREE_TASKS] == pytest.approx(w)
    assert sum(weights.values()) == pytest.approx(1.0)
    # g = (4, 8), (6, 12), (-2, -4): shared = (4 w_a + 6 w_s - 2 w_3) (1, 2)
    assert shared == pytest.approx([4 * w[0] + 6 * w[1] - 2 * w[2], 8 * w[0] + 12 * w[1] - 4 * w[2]])
    assert heads == pytest.approx((8 * w[0], 12 * w[1]))


def test_it_weighs_losses_not_gradients_and_keeps_no_state():
    with pytest.raises(InputError, match="rlw weighs the task losses, not gradients"):
        WeightingConfig(name="rlw", gradients="representation")
    assert dict(weighting("rlw").state_dict()) == {}


def test_zero_and_identical_losses_and_one_task_stay_finite():
    torch.manual_seed(1)
    shared, heads, weights = step(weighting("rlw"), (0.0, 0.0))  # L = (0, 3), every gradient 0
    assert shared == [0.0, 0.0] and heads == (0.0, 0.0)
    assert sum(weights.values()) == pytest.approx(1.0)

    model = TwoHeads()
    loss = model.losses(X1)["activity"]
    weights = weighting("rlw").backward({"activity": loss, "segmentation": loss}, [])
    # whatever the draw, the weights sum to 1: the gradient is that of L_activity
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([4.0, 8.0])

    model = TwoHeads()
    weights = weighting("rlw", tasks=("segmentation",)).backward({"segmentation": model.losses(X1)["segmentation"]}, [])
    assert weights == pytest.approx({"segmentation": 1.0})  # softmax of one draw
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
