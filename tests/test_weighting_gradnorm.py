"""GradNorm against gradients differentiated by hand (the toy problem: tests/weighting_toy.py).

Notation: s the logits, z = softmax(s), w = T z the weights, g_t the gradient of L_t on the
shared weight, n_t = ||g_t||, G_t = w_t n_t, Gbar = mean_t G_t, r_t the relative inverse training
rate and L_grad = sum_t |G_t - Gbar r_t^alpha| (targets constant). Then
    dL_grad/dw_t = sign(G_t - target_t) n_t,    dw_t/ds_k = w_t (delta_tk - z_k),
    dL_grad/ds_k = u_k - z_k sum_t u_t,          u_t = sign(G_t - target_t) n_t w_t.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, TwoHeads, step, weighting

ROOT5 = math.sqrt(5)


def set_logits(method, values):
    with torch.no_grad():
        method.logits.copy_(torch.tensor(values))
    method.logits.grad = None


def test_first_step_by_hand():
    method = weighting("gradnorm", gradnorm_alpha=1.5)
    shared, heads, weights = step(method, X1)
    # s = 0: w = (1, 1); shared = (4, 8) + (6, 12), heads the plain loss gradients
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    # L(0) = L = (4, 3): r = (1, 1), targets = Gbar = (4 sqrt5 + 6 sqrt5) / 2 = 5 sqrt5
    # G - target = (-sqrt5, +sqrt5): u = (-4 sqrt5, 6 sqrt5), sum u = 2 sqrt5, z = (1/2, 1/2)
    # dL_grad/ds = (-4 sqrt5 - sqrt5, 6 sqrt5 - sqrt5) = (-5 sqrt5, 5 sqrt5): the activity task, whose
    # gradient is the smaller, gains weight when the optimiser descends
    assert method.initial_losses.tolist() == pytest.approx([4.0, 3.0])
    assert method.logits.grad.tolist() == pytest.approx([-5 * ROOT5, 5 * ROOT5])
    assert method.logits.grad.tolist() == pytest.approx([-11.1803399, 11.1803399])
    assert [name for name, _ in method.named_parameters()] == ["logits"]


def test_second_step_with_training_rates_by_hand():
    method = weighting("gradnorm", gradnorm_alpha=1.5)
    step(method, X1)  # L(0) = (4, 3)
    set_logits(method, [0.5, -0.5])  # as if the optimiser had moved them
    shared, heads, weights = step(method, X2)
    # z = (1, e^-1) / (1 + e^-1) = (0.7310586, 0.2689414); w = 2 z = (1.4621172, 0.5378828)
    z_a = 1 / (1 + math.exp(-1))
    w_a, w_s = 2 * z_a, 2 * (1 - z_a)
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([1.4621172, 0.5378828])
    # at X2: g = (10, 5), (18, 9); shared = w_a (10, 5) + w_s (18, 9) = (24.303063, 12.151531)
    assert shared == pytest.approx([10 * w_a + 18 * w_s, 5 * w_a + 9 * w_s])
    assert shared == pytest.approx([24.3030627, 12.1515314])
    # heads: w_a dL_a/da = w_a 2 a y^2 = 12.5 w_a, w_s dL_s/db = w_s 6 (b y - 1) y = 22.5 w_s
    assert heads == pytest.approx((12.5 * w_a, 22.5 * w_s))
    assert heads == pytest.approx((18.2764645, 12.1023640))
    # n = (5 sqrt5, 9 sqrt5) = (11.18034, 20.12461); G = w n = (16.346967, 10.824683); Gbar = 13.585825
    # L / L(0) = (6.25 / 4, 6.75 / 3) = (1.5625, 2.25), mean 1.90625: r = (0.8196721, 1.1803279)
    # targets = Gbar r^1.5 = (10.081990, 17.421679): G - target = (+6.265, -6.597), signs (+, -)
    # dL_grad/ds_a = u_a - z_a (u_a + u_s) = z_s u_a - z_a u_s with u = (w_a n_a, -w_s n_s)
    #              = 2 z_a z_s (n_a + n_s) = 2 z_a z_s 14 sqrt5 = 12.309854; dL_grad/ds_s = -dL_grad/ds_a
    expected = 2 * z_a * (1 - z_a) * 14 * ROOT5
    assert method.logits.grad.tolist() == pytest.approx([expected, -expected])
    assert method.logits.grad.tolist() == pytest.approx([12.3098541, -12.3098541])
    assert method.initial_losses.tolist() == pytest.approx([4.0, 3.0])  # set once


def test_three_tasks_by_hand():
    method = weighting("gradnorm", tasks=THREE_TASKS)
    set_logits(method, [0.0, 0.0, math.log(2)])
    shared, heads, weights = step(method, X1)
    # z = (1, 1, 2) / 4, w = 3 z = (0.75, 0.75, 1.5)
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([0.75, 0.75, 1.5])
    # g = (4, 8), (6, 12), (-2, -4): shared = 0.75 (4, 8) + 0.75 (6, 12) + 1.5 (-2, -4) = (4.5, 9)
    assert shared == pytest.approx([4.5, 9.0])
    assert heads == pytest.approx((0.75 * 8, 0.75 * 12))  # the third task has no head
    # n = (4, 6, 2) sqrt5, G = (3, 4.5, 3) sqrt5, Gbar = 3.5 sqrt5, r = 1 (first step): signs (-, +, -)
    # u = (-3, 4.5, -3) sqrt5, sum u = -1.5 sqrt5
    # dL_grad/ds = u - z sum u = (-3 + 0.375, 4.5 + 0.375, -3 + 0.75) sqrt5 = (-2.625, 4.875, -2.25) sqrt5
    assert method.logits.grad.tolist() == pytest.approx([-2.625 * ROOT5, 4.875 * ROOT5, -2.25 * ROOT5])
    assert sum(method.logits.grad.tolist()) == pytest.approx(0.0, abs=1e-5)


def test_the_representation_path():
    method = weighting("gradnorm", gradients="representation")
    shared, heads, weights = step(method, X1, cut=True)
    # the representation y's gradients: dL/dy = (4, 6), n = (4, 6); w = (1, 1): direction 4 + 6 = 10,
    # and w.grad = 10 x = (10, 20)
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})
    # G = (4, 6), Gbar = 5, r = 1: signs (-, +); dL_grad/ds_a = 2 z_a z_s (-n_a - n_s) = -10 / 2 = -5
    assert method.logits.grad.tolist() == pytest.approx([-5.0, 5.0])

    set_logits(method, [0.5, -0.5])
    shared, heads, weights = step(method, X1, cut=True)
    w_a, w_s = weights["activity"], weights["segmentation"]
    assert [w_a, w_s] == pytest.approx([1.4621172, 0.5378828])
    assert shared == pytest.approx([(4 * w_a + 6 * w_s) * x for x in X1])  # direction times x
    assert heads == pytest.approx((8 * w_a, 12 * w_s))


def test_heads_get_the_weighted_sum_and_gradients_accumulate():
    method = weighting("gradnorm")
    set_logits(method, [0.5, -0.5])
    model = TwoHeads()
    model.shared.weight.grad = torch.tensor([[1.0, -1.0]])
    model.head_activity.grad = torch.tensor(0.5)
    method.logits.grad = torch.tensor([1.0, 2.0])
    shared, heads, weights = step(method, X1, model=model)
    w_a, w_s = weights["activity"], weights["segmentation"]
    assert shared == pytest.approx([1 + 4 * w_a + 6 * w_s, -1 + 8 * w_a + 12 * w_s])
    assert heads == pytest.approx((0.5 + 8 * w_a, 12 * w_s))
    # first step at X1: r = 1; G = (w_a 4 sqrt5, w_s 6 sqrt5) = (13.08, 7.22), signs (+, -);
    # dL_grad/ds_a = 2 z_a z_s (n_a + n_s) = 2 z_a z_s 10 sqrt5, added to the 1 already there
    z_a = 1 / (1 + math.exp(-1))
    expected = 2 * z_a * (1 - z_a) * 10 * ROOT5
    assert method.logits.grad.tolist() == pytest.approx([1 + expected, 2 - expected])


def test_state_dict_round_trip_gives_the_same_next_step():
    trained = weighting("gradnorm", gradnorm_alpha=3.0)
    step(trained, X1)  # L(0) = (4, 3)
    set_logits(trained, [0.1, -0.1])
    resumed = weighting("gradnorm", gradnorm_alpha=3.0)
    resumed.load_state_dict(trained.state_dict())
    assert set(trained.state_dict()) == {"logits", "initial_losses"}

    def next_step(method):
        shared, heads, weights = step(method, X2)
        return [*shared, *heads, *(weights[task] for task in TASKS), *method.logits.grad.tolist()]

    expected = next_step(trained)
    assert next_step(resumed) == pytest.approx(expected)
    assert next_step(weighting("gradnorm", gradnorm_alpha=3.0))[:2] != pytest.approx(expected[:2])  # the logits
    # L(0) matters too. At X2 with w = 2 softmax(0.1, -0.1) = (1.0997, 0.9003): G = w (5, 9) sqrt5 =
    # (12.295, 18.118), Gbar = 15.206. With L(0) = (4, 3): r^3 = (0.5507, 1.6444), targets (8.375, 25.005),
    # signs (+, -), dL_grad/ds_a = 2 z_a z_s (n_a + n_s) > 0; with L(0) = X2's losses: r = 1, targets
    # Gbar, signs (-, +), and the opposite gradient
    without_initial_losses = weighting("gradnorm", gradnorm_alpha=3.0)
    set_logits(without_initial_losses, [0.1, -0.1])
    other = next_step(without_initial_losses)
    assert other[:6] == pytest.approx(expected[:6])
    z_a = 1 / (1 + math.exp(-0.2))
    assert expected[6:] == pytest.approx([2 * z_a * (1 - z_a) * 14 * ROOT5, -2 * z_a * (1 - z_a) * 14 * ROOT5])
    assert other[6:] == pytest.approx([-value for value in expected[6:]])


def test_nothing_shared_is_a_plain_backward_of_the_weighted_losses():
    method = weighting("gradnorm")
    set_logits(method, [0.5, -0.5])
    shared, heads, weights = step(method, with_shared=False)
    w_a, w_s = 2 / (1 + math.exp(-1)), 2 / (1 + math.exp(1))
    assert weights == pytest.approx({"activity": w_a, "segmentation": w_s})
    assert shared == pytest.approx([4 * w_a + 6 * w_s, 8 * w_a + 12 * w_s])
    assert heads == pytest.approx((8 * w_a, 12 * w_s))
    assert method.logits.grad is None  # no shared gradient norms to balance


def all_finite(method):
    return all(torch.isfinite(tensor).all() for tensor in [*method.state_dict().values(), method.logits.grad])


def test_zero_and_identical_gradients_and_one_task_stay_finite():
    # x = 0: y = 0, L = (0, 3), every gradient is 0; then L(0)_activity = 0
    method = weighting("gradnorm")
    shared, heads, weights = step(method, (0.0, 0.0))
    assert shared == [0.0, 0.0] and heads == (0.0, 0.0)
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})
    assert method.logits.grad.tolist() == [0.0, 0.0]
    method.logits.grad = None
    shared, _, _ = step(method, X1)  # L / L(0) is huge for activity, but finite
    assert all_finite(method) and all(math.isfinite(value) for value in shared)

    # one loss for both tasks: equal norms and rates, nothing to balance
    method = weighting("gradnorm")
    model = TwoHeads()
    loss = model.losses(X1)["activity"]
    weights = method.backward({"activity": loss, "segmentation": loss}, list(model.shared.parameters()))
    assert weights == pytest.approx({"activity": 1.0, "segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([8.0, 16.0])
    assert method.logits.grad.tolist() == pytest.approx([0.0, 0.0])

    method = weighting("gradnorm", tasks=("segmentation",))
    model = TwoHeads()
    weights = method.backward({"segmentation": model.losses(X1)["segmentation"]}, list(model.shared.parameters()))
    assert weights == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
    assert method.logits.grad.tolist() == [0.0]
