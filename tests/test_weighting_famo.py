"""FAMO against gradients differentiated by hand (the toy problem: tests/weighting_toy.py).

z = softmax(xi), D_t = L_t + eps (minimum losses 0), c = sum_t z_t / D_t held constant; the
objective sum_t z_t log D_t / c has dJ/dL_t = z_t / (c D_t), the reported weight (they sum to 1).
After the step, delta_t = log D_t(before) - log D_t(after), the logits' gradient is
J^T delta = z * (delta - z . delta), and Adam (lr 0.025, L2 decay 1e-3) moves the logits. Adam's
first step, from zero moments with bias correction, is m_hat / (sqrt(v_hat) + 1e-8) = g / (|g| + 1e-8):
each logit moves by lr against the sign of its (decayed) gradient.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist

from baselines.config import WeightingConfig
from mtlbench.errors import InputError
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, TwoHeads, step, weighting

LOG2 = math.log(2)


def losses_after(*values, tasks=TASKS):
    return lambda: {task: torch.tensor(value) for task, value in zip(tasks, values)}


def set_logits(method, values):
    method.logits.copy_(torch.tensor(values))


def test_one_step_and_one_logit_update_by_hand():
    method = weighting("famo", famo_lr=0.025, famo_weight_decay=1e-3)
    set_logits(method, [LOG2, 0.0])
    shared, heads, weights = step(method, X1)
    # z = (2, 1) / 3; D = (4, 3); c = (2/3) / 4 + (1/3) / 3 = 1/6 + 1/9 = 5/18
    # weights = z / (c D) = (2/3) / (10/9), (1/3) / (5/6) = (0.6, 0.4)
    assert weights == pytest.approx({"activity": 0.6, "segmentation": 0.4})
    # shared = 0.6 (4, 8) + 0.4 (6, 12) = (4.8, 9.6); heads 0.6 * 8, 0.4 * 12
    assert shared == pytest.approx([4.8, 9.6])
    assert heads == pytest.approx((4.8, 4.8))
    objective, _ = method.combine(torch.tensor([4.0, 3.0]))
    assert objective.item() == pytest.approx(18 / 5 * (2 / 3 * math.log(4) + 1 / 3 * math.log(3)))

    method.after_step(losses_after(2.0, 2.5))
    # delta = (log 4 - log 2, log 3 - log 2.5) = (log 2, log 1.2); z . delta = (2/3) log 2 + (1/3) log 1.2
    # J^T delta = z (delta - z . delta) = (2/9 log(5/3), -2/9 log(5/3)) = (0.1135136, -0.1135136)
    # plus decay 1e-3 xi: g = (2/9 log(5/3) + 1e-3 log 2, -2/9 log(5/3))
    g = [2 / 9 * math.log(5 / 3) + 1e-3 * LOG2, -2 / 9 * math.log(5 / 3)]
    assert method.adam_step.item() == 1
    assert method.adam_first_moment.tolist() == pytest.approx([0.1 * value for value in g])
    assert method.adam_second_moment.tolist() == pytest.approx([0.001 * value**2 for value in g])
    # the activity loss fell more (it halved): it loses weight
    assert method.logits.tolist() == pytest.approx([LOG2 - 0.025, 0.025])


def test_three_tasks_by_hand():
    method = weighting("famo", tasks=THREE_TASKS)
    shared, heads, weights = step(method, X1)
    # z = 1/3 each; D = (4, 3, 1); c = (1/3)(1/4 + 1/3 + 1) = 19/36; weights = 12 / (19 D) = (3, 4, 12) / 19
    assert [weights[task] for task in THREE_TASKS] == pytest.approx([3 / 19, 4 / 19, 12 / 19])
    # shared = (3 (4, 8) + 4 (6, 12) + 12 (-2, -4)) / 19 = (12, 24) / 19; heads 8 * 3/19, 12 * 4/19
    assert shared == pytest.approx([12 / 19, 24 / 19])
    assert heads == pytest.approx((24 / 19, 48 / 19))
    method.after_step(losses_after(2.0, 3.0, 0.5, tasks=THREE_TASKS))
    # delta = (log 2, 0, log 2), z . delta = (2/3) log 2; J^T delta = (1/3)(1/3, -2/3, 1/3) log 2; decay 0
    assert method.adam_first_moment.tolist() == pytest.approx([0.1 * LOG2 / 9, -0.2 * LOG2 / 9, 0.1 * LOG2 / 9])
    assert method.logits.tolist() == pytest.approx([-0.025, 0.025, -0.025])


def test_the_update_is_torch_adams():
    lr, decay = 0.025, 1e-3
    method = weighting("famo", tasks=THREE_TASKS, famo_lr=lr, famo_weight_decay=decay)
    reference = torch.nn.Parameter(torch.tensor([0.3, -0.1, 0.0]))
    set_logits(method, reference.tolist())
    optimizer = torch.optim.Adam([reference], lr=lr, weight_decay=decay)
    generator = torch.Generator().manual_seed(0)
    for _ in range(7):
        gradient = torch.randn(3, generator=generator)
        reference.grad = gradient.clone()
        optimizer.step()
        method.adam_update(gradient)
        assert method.logits.tolist() == pytest.approx(reference.tolist(), rel=1e-6, abs=1e-9)
    state = optimizer.state[reference]
    assert method.adam_step.item() == state["step"].item() == 7
    assert method.adam_first_moment.tolist() == pytest.approx(state["exp_avg"].tolist(), rel=1e-5)
    assert method.adam_second_moment.tolist() == pytest.approx(state["exp_avg_sq"].tolist(), rel=1e-5)


def test_state_dict_round_trip_gives_the_same_next_update():
    trained = weighting("famo")
    step(trained, X1)
    trained.after_step(losses_after(2.0, 2.5))
    resumed = weighting("famo")
    resumed.load_state_dict(trained.state_dict())
    assert set(trained.state_dict()) == {"logits", "adam_step", "adam_first_moment", "adam_second_moment"}
    assert [name for name, _ in trained.named_parameters()] == []  # the run's optimiser must not train them

    def next_step(method):
        shared, heads, weights = step(method, X2)
        method.after_step(losses_after(5.0, 6.0))
        return [*shared, *heads, *(weights[task] for task in TASKS), *method.logits.tolist(), *method.adam_second_moment.tolist()]

    expected = next_step(trained)
    assert next_step(resumed) == pytest.approx(expected)
    assert next_step(weighting("famo"))[:2] != pytest.approx(expected[:2])


def test_after_step_without_a_step_does_nothing():
    method = weighting("famo")
    method.after_step(lambda: pytest.fail("no losses to compare with"))
    step(method, X1)
    method.after_step(losses_after(2.0, 2.5))
    logits = method.logits.tolist()
    method.after_step(lambda: pytest.fail("the step's losses were used already"))
    assert method.logits.tolist() == logits


def test_it_weighs_losses_not_gradients():
    with pytest.raises(InputError, match="famo weighs the task losses, not gradients"):
        WeightingConfig(name="famo", gradients="parameters")


def test_zero_and_identical_losses_and_one_task_stay_finite():
    method = weighting("famo")
    shared, heads, weights = step(method, (0.0, 0.0))  # L = (0, 3), every gradient 0
    assert shared == [0.0, 0.0] and heads == (0.0, 0.0)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["activity"] == pytest.approx(1.0)  # D_activity = eps: nearly all the weight
    method.after_step(losses_after(0.0, 3.0))  # no change: delta = 0, and decay of zero logits is 0
    assert method.logits.tolist() == [0.0, 0.0]
    assert all(torch.isfinite(tensor).all() for tensor in method.state_dict().values())

    method = weighting("famo")
    model = TwoHeads()
    loss = model.losses(X1)["activity"]
    weights = method.backward({"activity": loss, "segmentation": loss}, [])
    assert weights == pytest.approx({"activity": 0.5, "segmentation": 0.5})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([4.0, 8.0])
    method.after_step(losses_after(1.0, 1.0))  # equal decreases: a zero gradient
    assert method.logits.tolist() == [0.0, 0.0]

    method = weighting("famo", tasks=("segmentation",))
    model = TwoHeads()
    weights = method.backward({"segmentation": model.losses(X1)["segmentation"]}, [])
    assert weights == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
    method.after_step(lambda: {"segmentation": torch.tensor(1.0)})
    assert method.logits.tolist() == [0.0]


def test_under_a_process_group_the_update_is_averaged_over_the_ranks(tmp_path):
    expected = weighting("famo")
    step(expected, X1)
    expected.after_step(losses_after(2.0, 2.5))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        method = weighting("famo")
        step(method, X1)
        method.after_step(losses_after(2.0, 2.5))
    finally:
        dist.destroy_process_group()
    # one rank: the mean is its own delta
    assert method.logits.tolist() == pytest.approx(expected.logits.tolist())
    assert method.logits.tolist() == pytest.approx([-0.025, 0.025])
