"""Cross-stitch networks: one encoder per task, their features mixed across tasks after every stage.

Paper: Ishan Misra, Abhinav Shrivastava, Abhinav Gupta and Martial Hebert, "Cross-stitch Networks
for Multi-task Learning", CVPR 2016.

Structure: each task has its own copy of the encoder (copies of one built encoder, so they start
identical and share its frozen state and its adapters' layout) and its own head. The encoders run
stage by stage (stages.py: resnet50's stem+layer1, layer2, layer3, layer4; a ViT's blocks in 4
groups, or one stage per block when shallower). After every stage a cross-stitch unit replaces each
task's features by a learnt linear combination of all tasks' features, per channel:

    x_t[c] <- sum_s alpha[t, s, c] * x_s[c]      (t, s: tasks; c: channel)

initialised as the paper's best setting (its ablation of the initialisation): alpha_S = 0.9 on a
task's own stream and alpha_D = 0.1 split equally over the others (a convex combination; one task:
alpha = 1). Heads read their task's mixed output of the last stage.

ViT encoders (dinov2, endovit): the units mix the token streams (B, N, D) between groups of blocks,
one weight per (task, task, channel) shared by all tokens, and, after the last stage, the feature
maps (B, C, h, w) the encoders' finishing step makes. dinov2's SMA (input or token placement) and
adapters (LoRA, DV-LoRA) run in each copy. Refused at configuration time: TESLA task-specific
adapters (each task already has its own encoder) and encoders that cannot run stage by stage.

Differences from LibMTL (LibMTL/architecture/Cross_stitch.py, ResNet only): LibMTL learns one scalar
per task pair and stage, initialised to 1 (each stream becomes the sum of all streams), and applies
units only between the 4 layers (3 of its 4 units are used); here the units are per channel (the
paper's channel-wise units), initialised (0.9, 0.1) as the paper, and a unit also follows the last
stage (the paper stitches up to the last shared layer before the task outputs), so every encoder
copy reaches every task. LibMTL builds each copy with its own random initialisation; here the copies
start equal (the paper's "same initialisation"; with pretrained weights both agree). The paper's
larger learning rate for the units (x10^3) is not applied: they train at the optimiser's rate.

shared_parameters(): as LibMTL's (its whole encoder module: all copies and the units), the
trainable parameters of every encoder copy and of the cross-stitch units: with non-zero alpha_D
every task's loss reaches all of them.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from baselines.config import ModelConfig
from baselines.models.heads import build_task_heads, check_tasks
from baselines.models.registries import ENCODERS, register_architecture
from baselines.models.stages import MAP, check_splittable, split_encoder
from baselines.models.multitask import MultiTaskModel

SAME_TASK_ALPHA = 0.9  # alpha_S; the paper's best initialisation (0.9, 0.1)


class CrossStitchUnit(nn.Module):
    """streams (one tensor per task, same shape) -> mixed streams: out_t = sum_s alpha[t, s] * in_s per channel.

    layout "map": (B, C, h, w), channels on dim 1; "tokens": (B, N, C), channels last.
    """

    def __init__(self, tasks: int, channels: int, layout: str, same: float = SAME_TASK_ALPHA):
        super().__init__()
        self.layout = layout
        if tasks == 1:
            alpha = torch.ones(1, 1, channels)
        else:
            alpha = torch.full((tasks, tasks, channels), (1.0 - same) / (tasks - 1))
            alpha[range(tasks), range(tasks)] = same
        self.alpha = nn.Parameter(alpha)

    def forward(self, streams: list[Tensor]) -> list[Tensor]:
        stacked = torch.stack(streams)
        if self.layout == MAP:
            mixed = torch.einsum("tsc,sbchw->tbchw", self.alpha, stacked)
        else:
            mixed = torch.einsum("tsc,sbnc->tbnc", self.alpha, stacked)
        return list(mixed.unbind(0))

    def extra_repr(self) -> str:
        tasks, _, channels = self.alpha.shape
        return f"tasks={tasks}, channels={channels}, layout={self.layout}"


class CrossStitchNetworks(MultiTaskModel):
    """forward(images) -> {task: logits}; images resized to `input_size` first, as HPS does."""

    def __init__(self, encoders: dict[str, nn.Module], heads: nn.ModuleDict, input_size: tuple[int, int], align_corners: bool = False):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.attach_heads(heads, input_size, align_corners)
        # Plain attribute (not a module): the stages reference the encoders' own modules.
        self.stages = {task: split_encoder(encoder) for task, encoder in self.encoders.items()}
        reference = self.stages[self.tasks[0]]
        self.units = nn.ModuleList(CrossStitchUnit(len(self.tasks), stage.channels, stage.layout) for stage in reference)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        size = images.shape[-2:]
        images = self.resize_input(images)
        streams = [images] * len(self.tasks)
        for index, unit in enumerate(self.units):
            streams = unit([self.stages[task][index](stream) for task, stream in zip(self.tasks, streams)])
        return {task: self.heads[task](stream, size) for task, stream in zip(self.tasks, streams)}

    def shared_parameters(self) -> list[nn.Parameter]:
        """Every encoder copy's trainable parameters and the units' (as LibMTL: all reach every task)."""
        return [parameter for module in (self.encoders, self.units) for parameter in module.parameters() if parameter.requires_grad]


def _check(config: ModelConfig) -> None:
    check_splittable(config, "cross_stitch")


@register_architecture(
    "cross_stitch",
    "cross-stitch networks (Misra et al. 2016): one encoder per task, per-channel cross-task mixing after every stage",
    check=_check,
)
def build_cross_stitch(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> CrossStitchNetworks:
    check_tasks(tasks)
    encoder = ENCODERS.get(config.encoder.name)(config.encoder, tuple(tasks), input_size)
    split_encoder(encoder)  # refuses what cannot run stage by stage before copying
    encoders = {task: encoder if index == 0 else copy.deepcopy(encoder) for index, task in enumerate(tasks)}
    heads = build_task_heads(config, tasks, encoder.out_channels, num_classes, num_activities)
    return CrossStitchNetworks(encoders, heads, input_size, config.align_corners)
