"""Spatially-Aware Multi-Scale Attention (SMA): EMA attention, placed on the input image or on the patch tokens.

EMA is Efficient Multi-scale Attention (Ouyang et al., ICASSP 2023). The EndoARSS release wraps
it in a MobileViT-style block on the image before the patch embedding (`InputSMA`); placing it on
the ViT's patch-token map (`TokenSMA`) is the other reading of the paper. Both are trained by
default (the release leaves its block frozen at random init, by accident: model.encoder.sma.trainable).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _cross_spatial(descriptor_branch: Tensor, spatial_branch: Tensor) -> Tensor:
    """One branch's softmaxed channel descriptor applied to the other branch's map: (N, 1, h, w)."""
    n, c, h, w = spatial_branch.shape
    descriptor = descriptor_branch.mean(dim=(2, 3)).softmax(dim=1).unsqueeze(1)  # (N, 1, c)
    return torch.bmm(descriptor, spatial_branch.reshape(n, c, h * w)).reshape(n, 1, h, w)


class EfficientMultiScaleAttention(nn.Module):
    """EMA: re-weights each pixel of each channel group by a sigmoid of cross-branch spatial attention.

    The channels are split into `groups` groups that share every weight (each group is a sample of
    width channels // groups); a 1x1 branch gates the group with coordinate attention along height
    and width and normalises it, a parallel 3x3 branch adds local context, and each branch's pooled
    channel descriptor attends over the other branch's spatial map.
    """

    def __init__(self, channels: int, groups: int):
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f"EMA needs channels ({channels}) divisible by groups ({groups})")
        width = channels // groups
        self.groups = groups
        self.axis_conv = nn.Conv2d(width, width, kernel_size=1)  # shared by the height and the width descriptors
        self.local_conv = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)
        along_height = grouped.mean(dim=3, keepdim=True)  # (N, c', h, 1)
        along_width = grouped.mean(dim=2, keepdim=True).transpose(2, 3)  # (N, c', w, 1)
        height_gate, width_gate = self.axis_conv(torch.cat([along_height, along_width], dim=2)).split([h, w], dim=2)
        gated = self.norm(grouped * height_gate.sigmoid() * width_gate.transpose(2, 3).sigmoid())
        local = self.local_conv(grouped)
        weights = _cross_spatial(gated, local) + _cross_spatial(local, gated)
        return (grouped * weights.sigmoid()).reshape(b, c, h, w)


def to_patch_planes(feature_map: Tensor, patch_size: int) -> Tensor:
    """(B, D, H, W) -> (B, p*p, (H/p)*(W/p), D): channel k is position (k // p, k % p) inside each
    p x p patch, rows run over the patches (row-major), columns over the D features. The
    release's MobileViT unfolding, 'bs dim (nh ph) (nw pw) -> bs (ph pw) (nh nw) dim'."""
    b, d, h, w = feature_map.shape
    p = patch_size
    patches = feature_map.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
    return patches.reshape(b, p * p, (h // p) * (w // p), d)


def from_patch_planes(planes: Tensor, patch_size: int, height: int, width: int) -> Tensor:
    """The inverse of to_patch_planes: (B, p*p, (H/p)*(W/p), D) -> (B, D, H, W)."""
    b, _, _, d = planes.shape
    p = patch_size
    patches = planes.reshape(b, p, p, height // p, width // p, d).permute(0, 5, 3, 1, 4, 2)
    return patches.reshape(b, d, height, width)


class InputSMA(nn.Module):
    """The release's MobileViT-style block on the image: output has the image's shape.

    3x3 conv, 1x1 conv to `channels`, EMA, 1x1 conv back to the image channels, concatenation
    with the image, 3x3 conv back to the image channels. With `patch_size` (the release's layout)
    EMA sees the map unfolded into patch_size x patch_size patches: patch_size**2 channels (the
    positions in a patch) over (patch index, feature) planes, so it pools across features and
    patches rather than across the image. Without it (the default) EMA runs on the whole
    (channels, H, W) map, so its height and width pooling spans the image (the spatially-aware
    reading). The release's block also builds a transformer branch that its forward never calls;
    it is left out.
    """

    def __init__(self, channels: int, groups: int, image_channels: int = 3, patch_size: int | None = None):
        super().__init__()
        self.patch_size = patch_size
        self.local = nn.Conv2d(image_channels, image_channels, kernel_size=3, padding=1)
        self.expand = nn.Conv2d(image_channels, channels, kernel_size=1)
        self.attention = EfficientMultiScaleAttention(channels if patch_size is None else patch_size**2, groups)
        self.project = nn.Conv2d(channels, image_channels, kernel_size=1)
        self.fuse = nn.Conv2d(2 * image_channels, image_channels, kernel_size=3, padding=1)

    def forward(self, images: Tensor) -> Tensor:
        expanded = self.expand(self.local(images))
        if self.patch_size is None:
            attended = self.attention(expanded)
        else:
            height, width = expanded.shape[-2:]
            if height % self.patch_size or width % self.patch_size:
                raise ValueError(f"the patches layout needs sides divisible by {self.patch_size}, got {height}x{width}")
            planes = self.attention(to_patch_planes(expanded, self.patch_size))
            attended = from_patch_planes(planes, self.patch_size, height, width)
        return self.fuse(torch.cat([images, self.project(attended)], dim=1))


class TokenSMA(nn.Module):
    """EMA on the (B, D, h, w) patch-token map, added back residually."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.attention = EfficientMultiScaleAttention(channels, groups)

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map + self.attention(feature_map)
