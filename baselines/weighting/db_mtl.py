"""Dual-balancing multi-task learning (Lin et al., 2023), as in the EndoARSS release (LibMTL's DB_MTL).

Loss-scale balancing: every task contributes log(L_t + eps) instead of L_t. Gradient-magnitude
balancing, on the shared parameters only: g_t = grad of log(L_t + eps) per task, an exponential
moving average m_t <- beta m_t + (1 - beta) g_t, each m_t rescaled to the largest norm among the
tasks, alpha_t = max_s ||m_s|| / (||m_t|| + eps), and the shared gradient sum_t alpha_t m_t
(alpha is what `backward` reports). Task-specific parameters get the gradient of
sum_t log(L_t + eps), so each head sees only its own task's log loss.

One backward pass per task, and no more: each task's pass differentiates log(L_t + eps) from L_t
itself (not from the stacked log losses, whose backward would also run the other tasks' heads
with zero gradients) with respect to the shared parameters and to the other trainable tensors
that L_t reaches (its head, a task-specific encoder's own parameters), whose gradients are
accumulated into .grad there and then. A trainable tensor outside `shared` that several tasks
reach gets the sum of their gradients, as from a backward of sum_t log(L_t + eps).

The averages start at zero with no bias correction, as LibMTL writes it (m <- g + beta (m - g)),
so the first step's m_t is (1 - beta) g_t; since every m_t is rescaled to the largest norm,
this only scales the early shared gradients down, which an adaptive optimiser largely absorbs.

Under DistributedDataParallel this does not rely on DDP's hooks: every gradient comes from
torch.autograd.grad, which the hooks do not see, and every .grad is written by hand. The
trainer must average the gradients over the ranks itself after `backward`. Each rank's averages
and alpha then come from its own local gradients, so the result is the mean over ranks of each
rank's balanced gradient, not the balance of the global-batch gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.base import EPS, Weighting


@WEIGHTINGS.register("db_mtl")
class DualBalancing(Weighting):
    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        # One row per task over the flattened shared parameters; sized on the first step, when
        # the shared parameters are first seen.
        self.register_buffer("gradient_ema", torch.zeros(len(self.tasks), 0))

    def backward(self, losses: dict[str, Tensor], shared: Sequence[torch.nn.Parameter]) -> dict[str, float]:
        shared = list(shared)
        if not shared:
            log_losses = torch.log(self.stack_losses(losses) + EPS)
            log_losses.sum().backward()
            return self.per_task(torch.ones_like(log_losses))

        averages = self.averages_by_parameter(shared)
        shared_ids = {id(p) for p in shared}
        task_losses = self.in_task_order(losses)
        for index, loss in enumerate(task_losses):
            own = [leaf for leaf in reachable_leaves(loss) if id(leaf) not in shared_ids]
            gradients = torch.autograd.grad(
                torch.log(loss + EPS), shared + own, retain_graph=index < len(task_losses) - 1, materialize_grads=True
            )
            # m_t <- beta m_t + (1 - beta) g_t parameter by parameter: flattening g_t into one
            # vector first would copy every shared gradient once more.
            for average, gradient in zip(averages[index], gradients[: len(shared)]):
                average.lerp_(gradient.reshape(-1).to(average.dtype), 1 - self.config.beta)
            for p, gradient in zip(own, gradients[len(shared) :]):
                accumulate_gradient(p, gradient)
        norms = self.gradient_ema.norm(dim=1)
        alpha = norms.max() / (norms + EPS)
        shared_gradient = alpha @ self.gradient_ema
        for p, gradient in zip(shared, shared_gradient.split([p.numel() for p in shared])):
            accumulate_gradient(p, gradient.view_as(p).to(p.dtype))
        return self.per_task(alpha)

    def averages_by_parameter(self, shared: list[torch.nn.Parameter]) -> list[tuple[Tensor, ...]]:
        """Each task's row of the averages as views, one per shared parameter (flattened); the rows
        are sized on the first step, in the shared parameters' common dtype."""
        sizes = [p.numel() for p in shared]
        if self.gradient_ema.shape[1] == 0:
            dtype = functools.reduce(torch.promote_types, (p.dtype for p in shared))
            self.gradient_ema = torch.zeros(len(self.tasks), sum(sizes), dtype=dtype, device=shared[0].device)
        elif self.gradient_ema.shape[1] != sum(sizes):
            raise ValueError(f"the shared parameters changed size: {self.gradient_ema.shape[1]} values before, {sum(sizes)} now")
        return [row.split(sizes) for row in self.gradient_ema]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh instance has not sized its averages yet: take the saved size.
        saved = state_dict.get(prefix + "gradient_ema")
        if saved is not None and saved.shape != self.gradient_ema.shape:
            self.gradient_ema = self.gradient_ema.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def reachable_leaves(output: Tensor) -> list[Tensor]:
    """The tensors whose .grad a backward of `output` would fill (the leaves of its autograd
    graph that require grad), in a fixed order."""
    leaves, seen, pending = [], set(), [output.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: the node that writes a leaf's .grad
            leaves.append(node.variable)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def accumulate_gradient(parameter: Tensor, gradient: Tensor) -> None:
    """Add `gradient` to .grad as loss.backward() does, in the parameter's memory layout: autograd.grad
    may return another (channels-last for the heads' convolutions), and collectives such as the
    trainer's gradient averaging expect .grad laid out like the parameter."""
    if parameter.grad is not None:
        parameter.grad += gradient
    elif same_layout(gradient, parameter):
        parameter.grad = gradient
    else:
        parameter.grad = torch.empty_like(parameter).copy_(gradient)


def same_layout(tensor: Tensor, like: Tensor) -> bool:
    """Equal strides along every dimension longer than 1 (the stride of a size-1 dimension is never used)."""
    return all(size == 1 or a == b for size, a, b in zip(like.shape, tensor.stride(), like.stride()))
