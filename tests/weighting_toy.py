"""The toy problem every weighting method's hand-computed test uses.

A shared Linear(2 -> 1, no bias) with weight w = (1, 0.5) gives y = w . x, and two task "heads",
scalars a = b = 1, give
    L_activity = (a y)^2             dL/dw = 2 a^2 y x       d log L / dw = 2 x / y
    L_segmentation = 3 (b y - 1)^2   dL/dw = 6 b (b y - 1) x d log L / dw = 2 b x / (b y - 1)
At x = (1, 2): y = 2, L = (4, 3), dL/dw = (4, 8) and (6, 12), d log L / dw = (1, 2) and (2, 4),
dL/dy = (4, 6) (the representation's gradients), heads dL_a/da = 2 a y^2 = 8, dL_s/db = 6 (b y - 1) y = 12.
At x = (2, 1): y = 2.5, L = (6.25, 6.75), dL/dw = (10, 5) and (18, 9), dL/dy = (5, 9),
d log L / dw = (1.6, 0.8) and (8/3, 4/3), d log L / da = 2, d log L / db = 5 / 1.5 = 10/3.
A third task for three-task cases: L_third = (y - 3)^2, dL/dw = 2 (y - 3) x: at x = (1, 2) L = 1,
dL/dw = (-2, -4), dL/dy = -2.
"""

from __future__ import annotations

import torch

from baselines.config import WeightingConfig
from baselines.models.representation import CutRepresentation
from baselines.weighting import build_weighting

TASKS = ("activity", "segmentation")
THREE_TASKS = ("activity", "segmentation", "third")
X1 = (1.0, 2.0)
X2 = (2.0, 1.0)


class TwoHeads(torch.nn.Module):
    """The toy model; with `tasks=THREE_TASKS` it has the third, head-less task too."""

    def __init__(self, tasks=TASKS):
        super().__init__()
        self.tasks = tuple(tasks)
        self.shared = torch.nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.shared.weight.copy_(torch.tensor([[1.0, 0.5]]))
        self.head_activity = torch.nn.Parameter(torch.tensor(1.0))
        self.head_segmentation = torch.nn.Parameter(torch.tensor(1.0))
        self.representation = None

    def losses(self, x: tuple[float, float], cut: bool = False) -> dict[str, torch.Tensor]:
        y = self.shared(torch.tensor(x)).squeeze()
        reads = {task: y for task in self.tasks}
        if cut:
            self.representation = CutRepresentation(y, self.tasks)
            reads = self.representation.leaves
        losses = {
            "activity": (self.head_activity * reads["activity"]) ** 2,
            "segmentation": 3 * (self.head_segmentation * reads["segmentation"] - 1) ** 2,
        }
        if "third" in self.tasks:
            losses["third"] = (reads["third"] - 3) ** 2
        return losses


def step(method, x=X1, with_shared=True, model=None, cut=False):
    """One training step from zero gradients: (w.grad, (a.grad, b.grad), reported weights).
    `cut`: the method balances the representation y's gradients."""
    model = model or TwoHeads(method.tasks)
    shared = list(model.shared.parameters()) if with_shared else []
    losses = model.losses(x, cut=cut)
    weights = method.backward(losses, shared, model.representation)
    heads = tuple(None if p.grad is None else p.grad.item() for p in (model.head_activity, model.head_segmentation))
    return model.shared.weight.grad.squeeze().tolist(), heads, weights


def step_sharing_a_head(method, x=X1, model=None):
    """One step with the activity head shared too, which makes the task gradients non-parallel:
    ((dw1, dw2, da), db, reported weights)."""
    model = model or TwoHeads(method.tasks)
    weights = method.backward(model.losses(x), [model.shared.weight, model.head_activity])
    return [*model.shared.weight.grad.squeeze().tolist(), model.head_activity.grad.item()], model.head_segmentation.grad.item(), weights


def weighting(name: str, tasks=TASKS, **settings):
    return build_weighting(WeightingConfig(name=name, **settings), tasks)
