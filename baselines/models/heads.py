"""Task heads of EndoARSS: DeepLab ASPP for segmentation, conv + pooling + linear for activity.

Every head is called as head(features, output_size) so that architectures stay task-agnostic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.config import TASKS, ModelConfig
from mtlbench.errors import InputError


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImagePooling(nn.Module):
    """ASPP's global context branch: average pool, 1x1 conv, (BatchNorm), ReLU, broadcast back to the map.

    Without BatchNorm by default, unlike the other branches: its input is 1x1, so in training
    mode BatchNorm would normalise over the batch alone (an error with batch 1, noise with small
    batches). The conv has a bias instead, as in DeepLab implementations that drop the
    normalisation there. `batchnorm` gives the release's (and torchvision's) branch: a bias-free
    conv, BatchNorm and ReLU; in eval mode the two are the same function once BN is folded.
    """

    def __init__(self, in_channels: int, channels: int, batchnorm: bool = False):
        super().__init__()
        if batchnorm:
            self.conv = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        else:
            self.conv = nn.Conv2d(in_channels, channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.relu(self.conv(F.adaptive_avg_pool2d(features, 1)))
        return pooled.expand(-1, -1, *features.shape[-2:])


class ASPPHead(nn.Module):
    """DeepLab ASPP, then 3x3 conv, BN, ReLU and a 1x1 classifier; logits upsampled to output_size
    (bilinear, with `align_corners` as configured: the release uses True)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 256,
        rates: Sequence[int] = (12, 24, 36),
        dropout: float = 0.5,
        pooling_batchnorm: bool = False,
        align_corners: bool = False,
    ):
        super().__init__()
        self.align_corners = align_corners
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, channels, 1)]
            + [conv_bn_relu(in_channels, channels, 3, dilation=rate) for rate in rates]
            + [ImagePooling(in_channels, channels, pooling_batchnorm)]
        )
        self.project = nn.Sequential(conv_bn_relu(channels * len(self.branches), channels, 1), nn.Dropout(dropout))
        self.refine = conv_bn_relu(channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
        x = self.project(torch.cat([branch(features) for branch in self.branches], dim=1))
        logits = self.classifier(self.refine(x))
        return F.interpolate(logits, size=tuple(output_size), mode="bilinear", align_corners=self.align_corners)


class ClassificationHead(nn.Module):
    """3x3 conv, BN, ReLU, global average pool, linear: (B, C, h, w) -> (B, num_classes)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256):
        super().__init__()
        self.conv = conv_bn_relu(in_channels, channels, 3)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, features: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        """output_size is accepted for the common head signature; class logits have no size."""
        return self.linear(F.adaptive_avg_pool2d(self.conv(features), 1).flatten(1))


def check_tasks(tasks: Sequence[str]) -> None:
    if not tasks or any(task not in TASKS for task in tasks) or len(set(tasks)) != len(tasks):
        known, given = ", ".join(TASKS), ", ".join(tasks) or "none"
        raise InputError("tasks", f"expected one or more distinct tasks of {known}, got {given}")


def build_task_heads(
    config: ModelConfig, tasks: Sequence[str], in_channels: int, num_classes: int, num_activities: int
) -> nn.ModuleDict:
    """One head per task, keyed by task name, in the order given."""
    check_tasks(tasks)
    heads = {}
    for task in tasks:
        if task == "activity":
            heads[task] = ClassificationHead(in_channels, num_activities, config.head_channels)
        else:
            heads[task] = ASPPHead(
                in_channels, num_classes, config.head_channels, config.aspp_rates, config.dropout,
                pooling_batchnorm=config.aspp_pooling_batchnorm, align_corners=config.align_corners,
            )
    return nn.ModuleDict(heads)
