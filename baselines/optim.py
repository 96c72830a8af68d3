"""Optimisers and learning-rate schedules, registered by name."""

from __future__ import annotations

import torch

from mtlbench.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULERS: Registry = Registry("scheduler")


@OPTIMIZERS.register("adam")
def adam(parameters, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(parameters, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)


# Schedules are stepped once per epoch: (optimizer, step_size, gamma, epochs) -> scheduler.
@SCHEDULERS.register("step")
def step(optimizer, step_size: int, gamma: float, epochs: int):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULERS.register("cosine")
def cosine(optimizer, step_size: int, gamma: float, epochs: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))


@SCHEDULERS.register("none")
def constant(optimizer, step_size: int, gamma: float, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
