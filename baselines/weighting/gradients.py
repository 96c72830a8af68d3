"""The per-task gradient path that the gradient-balancing methods share.

One backward pass per task, and no more. Task t's pass differentiates its objective with
respect to the targets being balanced (the shared parameters, or the task's leaf of the cut
representation) and, in the same pass, with respect to the other trainable tensors it reaches
(its head, a task-specific encoder's own parameters), whose gradients are accumulated into
.grad at once. So a head is never run backwards for a task it does not serve, and the encoder
is not run backwards at all when the representation is balanced. The targets' gradients are
written into the rows of one (tasks, values) matrix, which is all the methods see.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor


def task_gradients(objectives: Sequence[Tensor], targets: Sequence[Sequence[Tensor]], balanced: set[int]) -> Tensor:
    """Row t: the gradient of objectives[t] with respect to targets[t] (flattened, concatenated).

    Every other trainable leaf that objectives[t] reaches, except those whose id is in `balanced`
    (what any task balances), receives its gradient in .grad, accumulated as loss.backward() does.
    """
    sizes = [tensor.numel() for tensor in targets[0]]
    # at least float32: the methods solve small systems in these rows, which bf16 features would spoil
    dtype = functools.reduce(torch.promote_types, (tensor.dtype for tensor in targets[0]), torch.float32)
    rows = torch.empty(len(objectives), sum(sizes), dtype=dtype, device=targets[0][0].device)
    for index, (objective, own_targets) in enumerate(zip(objectives, targets)):
        own = [leaf for leaf in reachable_leaves(objective) if id(leaf) not in balanced]
        gradients = torch.autograd.grad(
            objective, list(own_targets) + own, retain_graph=index < len(objectives) - 1, materialize_grads=True
        )
        for row_part, gradient in zip(rows[index].split(sizes), gradients[: len(own_targets)]):
            row_part.copy_(gradient.reshape(-1))
        for leaf, gradient in zip(own, gradients[len(own_targets) :]):
            accumulate_gradient(leaf, gradient)
    return rows


def gram_matrix(gradients: Tensor, chunk: int = 1 << 20) -> Tensor:
    """G = g g^T of the (tasks, values) rows, in float64 on the CPU. The products are accumulated in
    float64 a slice of values at a time, so only one slice is ever converted: a float32 Gram matrix
    loses the small differences that conflicts and near-cancellations are made of."""
    gram = torch.zeros(gradients.shape[0], gradients.shape[0], dtype=torch.float64, device=gradients.device)
    for part in gradients.split(chunk, dim=1):
        part = part.to(torch.float64)
        gram += part @ part.T
    return gram.cpu()


def write_gradient(parameters: Sequence[Tensor], flat: Tensor) -> None:
    """Accumulate a flat gradient over `parameters` (in their order) into their .grad."""
    for parameter, gradient in zip(parameters, flat.split([p.numel() for p in parameters])):
        accumulate_gradient(parameter, gradient.view_as(parameter).to(parameter.dtype))


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
