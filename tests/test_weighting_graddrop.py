"""GradDrop against masks worked out by hand (the toy problem: tests/weighting_toy.py).

The uniform draws U are fixed by replacing torch.rand_like, or made irrelevant by a purity of
exactly 0 or 1 (all tasks' signed gradients negative or positive at a position).
"""

from __future__ import annotations

import pytest
import torch

from baselines.config import WeightingConfig
from baselines.models.representation import CutRepresentation
from mtlbench.errors import InputError
from tests.weighting_toy import THREE_TASKS, X1, X2, step, weighting


def fixed_draws(monkeypatch, value: float):
    monkeypatch.setattr(torch, "rand_like", lambda tensor, *args, **kwargs: torch.full_like(tensor, value))


def test_agreeing_tasks_pass_whatever_the_draw():
    for seed in range(3):
        torch.manual_seed(seed)
        shared, heads, weights = step(weighting("graddrop"), X2, cut=True)
        # dL/dy = (5, 9) at y = 2.5 > 0: signed (5, 9), purity (1 + 14/14) / 2 = 1 > U: both kept;
        # the representation gets 14 and w.grad = 14 x = (28, 14)
        assert shared == pytest.approx([28.0, 14.0])
        assert heads == pytest.approx((12.5, 22.5))  # heads: the sum of the task gradients, unmasked
        assert weights == {"activity": 1.0, "segmentation": 1.0}


@pytest.mark.parametrize(
    ("draw", "leak", "on_y", "expected_weights"),
    [
        # dL/dy = (4, 6, -2) at y = 2 > 0: purity P = (1 + 8/12) / 2 = 5/6.
        (0.5, 0.0, 10.0, (1.0, 1.0, 0.0)),  # P > U: the positive tasks pass: 4 + 6
        (0.9, 0.0, -2.0, (0.0, 0.0, 1.0)),  # P < U: the negative one: -2
        # leak 0.2: the dropped task still passes 0.2 of its gradient: 4 + 6 + 0.2 (-2) = 9.6
        (0.5, 0.2, 9.6, (1.0, 1.0, 0.2)),
        (0.9, 0.5, -2.0 + 0.5 * 10, (0.5, 0.5, 1.0)),  # -2 + 0.5 (4 + 6)
    ],
)
def test_three_tasks_by_hand(monkeypatch, draw, leak, on_y, expected_weights):
    fixed_draws(monkeypatch, draw)
    shared, heads, weights = step(weighting("graddrop", tasks=THREE_TASKS, graddrop_leak=leak), X1, cut=True)
    assert shared == pytest.approx([on_y, 2 * on_y])  # w.grad = (gradient on y) x, x = (1, 2)
    assert heads == pytest.approx((8.0, 12.0))
    assert [weights[task] for task in THREE_TASKS] == pytest.approx(expected_weights)


def batch_step(method, draw_values, monkeypatch):
    """A (batch 2, features 2) representation A with signs [[+, -], [+, +]] and task losses
    sum(A * C_t), so that dL_t/dA = C_t exactly; returns (gradient reaching A, weights)."""
    monkeypatch.setattr(torch, "rand_like", lambda tensor, *args, **kwargs: torch.tensor(draw_values, dtype=tensor.dtype))
    encoder_output = torch.tensor([[1.0, -1.0], [1.0, 1.0]], requires_grad=True)
    features = encoder_output * 1.0  # in the encoder's graph, as a model's features are
    representation = CutRepresentation(features, method.tasks)
    constants = {"activity": torch.tensor([[1.0, 2.0], [1.0, -1.0]]), "segmentation": torch.tensor([[-3.0, 1.0], [1.0, 0.0]])}
    losses = {task: (representation.leaves[task] * constants[task]).sum() for task in method.tasks}
    weights = method.backward(losses, [], representation)
    return encoder_output.grad.tolist(), weights


@pytest.mark.parametrize(
    ("draw", "expected_gradient", "expected_weights"),
    [
        # Signed and summed over the batch (column k: sum_b sgn(A_bk) C_t[b, k]):
        #   G_1 = (1 + 1, -2 - 1) = (2, -3),  G_2 = (-3 + 1, -1 + 0) = (-2, -1)
        # purity: column 0 (1 + 0/4) / 2 = 1/2, column 1 (1 - 4/4) / 2 = 0.
        # U = 0.3: column 0 P > U keeps the positive G (task 1 only), column 1 P < U keeps the
        # negative ones (both). M_1 = (1, 1), M_2 = (0, 1), the same for every example:
        #   C_1 + C_2 * [0, 1] = [[1, 2 + 1], [1, -1 + 0]]
        # weights: task 1 keeps all; task 2 keeps column 1, 1^2 + 0^2 of 9 + 1 + 1 + 0
        (0.3, [[1.0, 3.0], [1.0, -1.0]], (1.0, 1 / 11)),
        # U = 0.7: both columns keep the negative G: M_1 = (0, 1), M_2 = (1, 1)
        #   C_1 * [0, 1] + C_2 = [[-3, 3], [1, -1]]; task 1 keeps 2^2 + 1^2 of 1 + 4 + 1 + 1
        (0.7, [[-3.0, 3.0], [1.0, -1.0]], (5 / 7, 1.0)),
    ],
)
def test_purity_is_taken_over_the_signed_batch_sum(monkeypatch, draw, expected_gradient, expected_weights):
    # (per element, without the signs and the batch sum, task 1's (1, 1) entry would count as positive)
    gradient, weights = batch_step(weighting("graddrop"), [draw, draw], monkeypatch)
    assert gradient == [pytest.approx(row) for row in expected_gradient]
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(expected_weights)


def test_a_seed_fixes_the_draws():
    method = weighting("graddrop")
    gradients = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    results = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        results.append(method.aggregate(gradients, torch.ones(2))[0])
    assert torch.equal(results[0], results[1])
    assert not torch.equal(results[0], results[2])


def test_only_the_representation_is_balanced():
    assert weighting("graddrop").source == "representation"
    with pytest.raises(InputError, match="balances the gradients of the shared representation, not of the shared parameters"):
        WeightingConfig(name="graddrop", gradients="parameters")
    assert weighting("graddrop").state_dict() == {}


@pytest.mark.parametrize(
    "rows",
    [
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # zero gradients
        [[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]],  # one zero gradient: the other passes (purity 0 or 1)
        [[1.0, -2.0, 3.0], [1.0, -2.0, 3.0]],  # identical: purity 0 or 1, everything passes
    ],
)
def test_degenerate_gradients_stay_finite(rows):
    gradients = torch.tensor(rows)
    direction, weights = weighting("graddrop").aggregate(gradients, torch.ones(2))
    assert direction.tolist() == pytest.approx(gradients.sum(dim=0).tolist())
    assert weights.tolist() == [1.0, 1.0]


def test_single_task_passes_its_gradient():
    method = weighting("graddrop", tasks=("segmentation",))
    direction, weights = method.aggregate(torch.tensor([[6.0, -12.0]]), torch.ones(1))
    assert direction.tolist() == [6.0, -12.0] and weights.tolist() == [1.0]
