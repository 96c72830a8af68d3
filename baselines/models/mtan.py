"""MTAN: a shared encoder and, per task, soft attention masks that pick its features at every stage.

Paper: Shikun Liu, Edward Johns and Andrew J. Davison, "End-to-End Multi-Task Learning with
Attention", CVPR 2019.

Structure (as LibMTL's MTAN on ResNet, LibMTL/architecture/MTAN.py): the shared encoder runs stage
by stage (stages.py), each stage split into its body (all but the last unit) and its last unit.
Each task t keeps an attended stream a_t. At stage i its attention module g_i^t (1x1 conv, BN,
ReLU, 1x1 conv, BN, sigmoid) reads the body's output u_i, concatenated with a_t from the previous
stage for i > 0, and masks the stage's output s_i: a_t = g_i^t([u_i, a_t]) * s_i. Between stages a
shared block f_i (a bottleneck to the next stage's width, as LibMTL's `encoder_block_att`) maps a_t
to the next stage, max-pooled to the next body's spatial size when it differs. Each head reads its
task's a_t after the last stage. resnet50: the 4 stages are stem+layer1, layer2, layer3, layer4
(256, 512, 1024, 2048 channels; the attention's hidden width is a quarter of the stage width).

ViT encoders (dinov2, endovit), adapted: the stages are groups of blocks (4 groups, or one per
block when shallower; the body of a one-block stage is the identity, so its mask reads the stage's
input). The masks are per token and channel: g_i^t is a token MLP (Linear to D/4, LayerNorm, GELU,
Linear to D, sigmoid) of [u_i, a_t] (2D wide for i > 0), applied to the stage's output tokens (CLS
and register tokens included). f_i is a shared pre-norm residual token MLP (hidden D/4), the
bottleneck's analogue. After the last stage each task's masked tokens go through the encoder's own
finishing step (final norm, tokens to map, token SMA) to give its feature map. Refused at
configuration time: TESLA task-specific adapters (the attention modules are already per task) and
encoders that cannot run stage by stage.

Differences from LibMTL: the spatial match before concatenation is an adaptive max-pool to the body's
size (LibMTL: a fixed 2x2 max-pool after stage 0 and when sizes differ; the same on the dilated
ResNet-50 at even sizes), and with `model.encoder.freeze` the shared encoder stays frozen while the
attention modules train. No forward_task / multi-input mode (EndoARSS has one input).

shared_parameters(): the shared encoder's trainable parameters only (as LibMTL's get_share_params:
shared_conv and shared_layer). The per-task attention modules are task-specific; the between-stage
blocks f_i, though used by every task, are left out as in LibMTL (they are MTAN's attention network,
not the encoder), so gradient-balancing weighting does not balance them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.config import ModelConfig
from baselines.models.heads import build_task_heads, check_tasks
from baselines.models.registries import ENCODERS, register_architecture
from baselines.models.resnet import EXPANSION, Bottleneck
from baselines.models.stages import MAP, check_splittable, split_encoder
from baselines.models.multitask import MultiTaskModel

HIDDEN_DIVISOR = 4  # attention hidden width = stage width / 4 (LibMTL: ch // expansion)


def conv_attention(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """LibMTL's / MTAN's attention layer: 1x1 conv, BN, ReLU, 1x1 conv, BN, sigmoid."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 1),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, out_channels, 1),
        nn.BatchNorm2d(out_channels),
        nn.Sigmoid(),
    )


def conv_transfer(in_channels: int, out_channels: int) -> Bottleneck:
    """The shared block between stages: a bottleneck to `out_channels` with a 1x1 projection shortcut."""
    downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
    return Bottleneck(in_channels, out_channels // EXPANSION, stride=1, dilation=1, downsample=downsample)


def token_attention(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """The token analogue of conv_attention: a per-token MLP ending in a sigmoid, (B, N, in) -> (B, N, out)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out_features), nn.Sigmoid()
    )


class TokenTransfer(nn.Module):
    """The token analogue of conv_transfer (width kept): x + MLP(LayerNorm(x)), hidden width / 4."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim // HIDDEN_DIVISOR), nn.GELU(), nn.Linear(dim // HIDDEN_DIVISOR, dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mlp(self.norm(x))


class MultiTaskAttentionNetwork(MultiTaskModel):
    """forward(images) -> {task: logits}; images resized to `input_size` first, as HPS does."""

    def __init__(self, encoder: nn.Module, heads: nn.ModuleDict, input_size: tuple[int, int], align_corners: bool = False):
        super().__init__()
        self.encoder = encoder
        self.attach_heads(heads, input_size, align_corners)
        self.stages = split_encoder(encoder)  # plain attribute: the stages reference the encoder's modules
        self.maps = self.stages[0].inner_layout == MAP
        widths = [stage.inner_channels for stage in self.stages]
        attention, transfer = (conv_attention, conv_transfer) if self.maps else (token_attention, None)
        self.attention = nn.ModuleList(
            nn.ModuleDict(
                {task: attention(width if index == 0 else 2 * width, width // HIDDEN_DIVISOR, width) for task in self.tasks}
            )
            for index, width in enumerate(widths)
        )
        self.transfer = nn.ModuleList(
            transfer(width, following) if self.maps else TokenTransfer(width) for width, following in zip(widths, widths[1:])
        )

    def _concatenate(self, shared: Tensor, attended: Tensor) -> Tensor:
        if self.maps:
            if attended.shape[-2:] != shared.shape[-2:]:
                attended = F.adaptive_max_pool2d(attended, shared.shape[-2:])
            return torch.cat([shared, attended], dim=1)
        return torch.cat([shared, attended], dim=-1)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        size = images.shape[-2:]
        images = self.resize_input(images)
        x = images
        attended: dict[str, Tensor] = {}
        last = len(self.stages) - 1
        for index, stage in enumerate(self.stages):
            inner = stage.body(x)
            x = stage.last(inner)
            for task in self.tasks:
                source = inner if index == 0 else self._concatenate(inner, attended[task])
                masked = self.attention[index][task](source) * x
                attended[task] = self.transfer[index](masked) if index < last else stage.finish(masked)
            # x continues as the shared stream; the last stage's finishing step runs per task above
        return {task: self.heads[task](attended[task], size) for task in self.tasks}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The shared encoder's trainable parameters (not the attention modules nor the transfer blocks)."""
        return [parameter for parameter in self.encoder.parameters() if parameter.requires_grad]


def _check(config: ModelConfig) -> None:
    check_splittable(config, "mtan")


@register_architecture(
    "mtan",
    "MTAN (Liu et al. 2019): shared encoder, per-task attention masks on every stage's features",
    check=_check,
)
def build_mtan(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> MultiTaskAttentionNetwork:
    check_tasks(tasks)
    encoder = ENCODERS.get(config.encoder.name)(config.encoder, tuple(tasks), input_size)
    heads = build_task_heads(config, tasks, encoder.out_channels, num_classes, num_activities)
    return MultiTaskAttentionNetwork(encoder, heads, input_size, config.align_corners)
