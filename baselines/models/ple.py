"""PLE (Progressive Layered Extraction): Tang, Liu, Zhao and Gong, "Progressive Layered Extraction
(PLE): A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020.

Structure: CGC (cgc.py) stacked into levels, the levels being encoder stages. Each task keeps its
own stream, starting at the image; at each level, the `model.experts.shared` shared experts and
the task's `model.experts.per_task` own experts read the task's stream, and the task's softmax
gate (reading the same stream) mixes their outputs into the task's next stream; each head reads
its task's last stream (experts.py holds the machinery).

- resnet50, as LibMTL's PLE: one dilated ResNet-50 per expert (built by the encoder factory,
  each loading model.encoder.weights), cut into 5 levels: the stem (conv1, bn1, relu, maxpool),
  layer1, layer2, layer3, layer4; at level i each expert is its copy's level-i part and each gate
  is a linear layer on the flattened level input, then softmax. A frozen resnet50 is refused.
- ViT encoders (dinov2, endovit), adapted: the encoder is shared, with its adapters and SMA, and
  runs stage by stage (stages.py: 4 groups of consecutive blocks, one per block when shallower);
  after each stage, a level of residual per-token MLP experts (hidden width model.experts.hidden,
  default the encoder width) over its tokens (the last level over the final feature map), gated
  on the mean patch token. From stage 1 on, the encoder's stages run once per task stream (with
  the same weights). feature_layout release_view and TESLA adapters are refused, as are encoders
  that stages.py cannot split.

Differences from LibMTL: as LibMTL (and unlike the paper, whose shared experts read a shared
stream mixed by an extra shared gate at every level but the last), the shared experts read each
task's stream, so they run once per task after the first level (which reads the image once
here; LibMTL runs it per task too). Input resized to data.input_size first; gates in float32;
the ViT form is ours.

shared_parameters(): the shared experts' parameters at every level (ViT: and the shared
encoder's trainable ones); task-specific experts, gates and heads are task-specific.
"""

from __future__ import annotations

import math

from torch import nn

from baselines.config import ModelConfig
from baselines.models.experts import (
    FLATTEN,
    MEAN,
    ExpertLevel,
    MixtureOfExperts,
    TokenExpert,
    check_experts,
    output_shape,
    softmax_gate,
    uses_encoder_experts,
)
from baselines.models.heads import build_task_heads, check_tasks
from baselines.models.registries import ENCODERS, register_architecture
from baselines.models.stages import TOKENS, check_splittable, split_encoder


def _check(config: ModelConfig) -> None:
    check_experts(config, "ple")
    check_splittable(config, "ple")


def resnet_levels(encoder: nn.Module) -> list[nn.Module]:
    """LibMTL's PLE levels of a ResNet: the stem, then layer1..layer4 (the modules, not copies)."""
    stem = nn.Sequential(encoder.conv1, encoder.bn1, encoder.relu, encoder.maxpool)
    return [stem, encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4]


def _build_resnet_ple(config: ModelConfig, tasks: tuple[str, ...], input_size: tuple[int, int]) -> tuple[list[ExpertLevel], int]:
    shared, per_task = config.experts.shared, config.experts.per_task

    def copy() -> list[nn.Module]:
        return resnet_levels(ENCODERS.get(config.encoder.name)(config.encoder, tasks, input_size))

    shared_copies = [copy() for _ in range(shared)]
    task_copies = {task: [copy() for _ in range(per_task)] for task in tasks}
    levels, shape = [], (1, 3, *input_size)
    for index in range(len(shared_copies[0])):
        features = math.prod(shape[1:])
        gates = {task: softmax_gate(features, shared + per_task) for task in tasks}
        specific = {task: [parts[index] for parts in copies] for task, copies in task_copies.items()}
        levels.append(ExpertLevel([parts[index] for parts in shared_copies], specific, gates, FLATTEN))
        shape = output_shape(shared_copies[0][index], shape)
    return levels, shape[1]


@register_architecture(
    "ple", "progressive layered extraction: CGC levels (shared and task-specific experts, per-task gates) at every encoder stage", check=_check
)
def build_ple(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> MixtureOfExperts:
    tasks = tuple(tasks)
    check_tasks(tasks)
    if uses_encoder_experts(config):
        levels, channels = _build_resnet_ple(config, tasks, input_size)
        heads = build_task_heads(config, tasks, channels, num_classes, num_activities)
        return MixtureOfExperts(levels, heads, input_size, config.align_corners)
    encoder = ENCODERS.get(config.encoder.name)(config.encoder, tasks, input_size)
    stages = split_encoder(encoder)
    shared, per_task = config.experts.shared, config.experts.per_task
    levels = []
    for stage in stages:
        tokens = stage.layout == TOKENS
        dim, hidden = stage.channels, config.experts.hidden or stage.channels
        levels.append(
            ExpertLevel(
                [TokenExpert(dim, hidden, tokens) for _ in range(shared)],
                {task: [TokenExpert(dim, hidden, tokens) for _ in range(per_task)] for task in tasks},
                {task: softmax_gate(dim, shared + per_task) for task in tasks},
                MEAN,
                stages.num_prefix_tokens if tokens else None,
            )
        )
    heads = build_task_heads(config, tasks, encoder.out_channels, num_classes, num_activities)
    return MixtureOfExperts(levels, heads, input_size, config.align_corners, encoder, list(stages))
