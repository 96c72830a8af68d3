"""Dilated ResNet-50 encoder (output stride 8, as DeepLab) loading torchvision ImageNet weights.

Module and parameter names are torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, ...,
`layer1.0.downsample.0`), so `torch.save(torchvision.models.resnet50(...).state_dict())` files
load with exact key and shape checks; the classifier `fc` is not part of the encoder and its
keys are ignored. Dilation follows torchvision's `replace_stride_with_dilation=[False, True, True]`
(used by its DeepLabV3): layer3 and layer4 keep stride 1, the first block of each keeps the
previous dilation and the others use 2 (layer3) and 4 (layer4).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from baselines.config import EncoderConfig
from mtlbench.checkpoints import check_keys, read_state_dict
from baselines.models.registries import ENCODERS
from mtlbench.errors import InputError

EXPANSION = 4
# (blocks, bottleneck width, stride, dilates): layer1..layer4 of ResNet-50
LAYERS = ((3, 64, 1, False), (4, 128, 2, False), (6, 256, 2, True), (3, 512, 2, True))
CLASSIFIER_PREFIX = "fc."


class Bottleneck(nn.Module):
    def __init__(self, in_channels: int, width: int, stride: int, dilation: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class DilatedResNet50(nn.Module):
    """forward(images, task=None) -> (B, 2048, H/8, W/8); the same features for every task."""

    out_channels = 2048
    task_specific = False

    def __init__(self, freeze: bool):
        super().__init__()
        self.frozen = freeze
        self.weights_loaded = False
        self.weights_file: Path | None = None
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels, dilation = 64, 1
        for index, (blocks, width, stride, dilates) in enumerate(LAYERS, start=1):
            first_dilation = dilation
            if dilates:
                dilation *= stride
                stride = 1
            layer, in_channels = self._make_layer(in_channels, width, blocks, stride, first_dilation, dilation)
            self.add_module(f"layer{index}", layer)
        self._initialise()
        if freeze:
            self.requires_grad_(False)
            self.train(False)

    @staticmethod
    def _make_layer(in_channels, width, blocks, stride, first_dilation, dilation) -> tuple[nn.Sequential, int]:
        out_channels = width * EXPANSION
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        layer = [Bottleneck(in_channels, width, stride, first_dilation, downsample)]
        layer += [Bottleneck(out_channels, width, 1, dilation, None) for _ in range(blocks - 1)]
        return nn.Sequential(*layer), out_channels

    def _initialise(self) -> None:
        # torchvision's initialisation, so random-init runs match a torchvision model built without weights
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> DilatedResNet50:
        # A frozen backbone keeps its BatchNorm statistics too: it stays in eval mode.
        return super().train(mode and not self.frozen)

    def forward(self, images: torch.Tensor, task: str | None = None) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def load_torchvision_weights(self, path: str | Path, prefix: str = "") -> None:
        state = {key: value for key, value in read_state_dict(path, prefix).items() if not key.startswith(CLASSIFIER_PREFIX)}
        # Older torchvision files predate BatchNorm's batch counter; it does not affect the features.
        for name, buffer in self.named_buffers():
            if name.endswith("num_batches_tracked"):
                state.setdefault(name, buffer)
        report = check_keys(self, state)
        if not report.exact:
            raise InputError(path, f"not a torchvision resnet50 state_dict: {report.describe()}")
        self.load_state_dict(state)
        self.weights_loaded, self.weights_file = True, Path(path)


def _check_unused_settings(config: EncoderConfig) -> None:
    """Settings that only the ViT encoder implements would be silently ignored here: refuse them."""
    settings = {
        "adapter.kind": config.adapter.kind != "none",
        "sma.placement": config.sma.placement != "off",
        "depth": config.depth is not None,
        "embed_dim": config.embed_dim is not None,
        "num_heads": config.num_heads is not None,
        "feature_layout": config.feature_layout != "spatial",
    }
    used = [name for name, is_set in settings.items() if is_set]
    if used:
        raise InputError("model.encoder", f"resnet50 does not support {', '.join(used)} (DINOv2 options)")


@ENCODERS.register("resnet50")
def build_resnet50_encoder(config: EncoderConfig, tasks: tuple[str, ...], input_size: tuple[int, int]) -> DilatedResNet50:
    _check_unused_settings(config)
    encoder = DilatedResNet50(freeze=config.freeze)
    if config.weights is not None:
        encoder.load_torchvision_weights(config.weights, config.weights_prefix)
    return encoder
