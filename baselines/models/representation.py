"""The shared representation cut out of the autograd graph, for weighting methods that balance its gradients.

MGDA-UB and GradDrop differentiate each task loss with respect to the features all heads read,
not with respect to the encoder's parameters: one backward per task through its head only, then
one backward of the combined gradient through the encoder. An architecture that has one such
representation (hps) hands each head its own leaf copy of the features while `cut_representation`
is set, so a task's backward stops there; `features.backward(gradient)` continues into the encoder.
"""

from __future__ import annotations

from torch import Tensor


class CutRepresentation:
    """The encoder's output (`features`, still in the encoder's graph) and one leaf per task that
    its head reads (`leaves`), detached from the encoder and requiring grad."""

    def __init__(self, features: Tensor, tasks: tuple[str, ...]):
        self.features = features
        self.leaves = {task: features.detach().requires_grad_() for task in tasks}
