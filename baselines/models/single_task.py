"""Single-task baselines: an independent network (own encoder, own head) per task, nothing shared.

Their scores are the references of the multi-task delta (Δm); training them together in one
run is equivalent to separate runs because no parameter receives gradients from two tasks.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.config import ModelConfig
from baselines.models.heads import check_tasks
from baselines.models.hps import HardParameterSharing, build_hps
from baselines.models.registries import register_architecture


class SingleTaskNetworks(nn.Module):
    """forward(images) -> {task: logits}, each task through its own one-task network."""

    def __init__(self, networks: dict[str, HardParameterSharing]):
        super().__init__()
        self.networks = nn.ModuleDict(networks)
        self.tasks = tuple(networks)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: network(images)[task] for task, network in self.networks.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return []


@register_architecture("single_task", "single-task baselines: an independent encoder and head per task, nothing shared")
def build_single_task(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> SingleTaskNetworks:
    check_tasks(tasks)
    return SingleTaskNetworks({task: build_hps(config, (task,), num_classes, num_activities, input_size) for task in tasks})
