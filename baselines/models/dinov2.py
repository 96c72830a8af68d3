"""The "dinov2" encoder: the DINOv2 ViT (dinov2_vit.py) with adapters, SMA and a feature-map layout.

Official checkpoints load with exact key and shape checks; only adapter parameters may be absent
from the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import torch
from torch import Tensor, nn

from baselines.config import EncoderConfig, SMAConfig
from baselines.models.adapters import apply_adapters, is_adapter_key, route_to_task
from mtlbench.checkpoints import check_keys
from baselines.models.dinov2_vit import (
    PATCH_SIZE,
    REGISTER_COUNT,
    REGISTERS_SUFFIX,
    VARIANTS,
    DinoVisionTransformer,
    ViTShape,
    detect_architecture,
    read_dino_weights,
)
from baselines.models.registries import ENCODERS
from baselines.models.sma import InputSMA, TokenSMA
from mtlbench.errors import InputError


class DinoV2Encoder(nn.Module):
    """Images (B, 3, H, W) -> the last block's normalised patch tokens as a feature map.

    feature_layout "spatial" gives (B, D, H/14, W/14). "release_view" reproduces the EndoARSS
    release's plain `.view` of the (B, N, D) tokens as (B, N, H/14, D // (H/14)): token positions
    become channels (kept only for comparison with the release).
    """

    def __init__(
        self,
        vit: DinoVisionTransformer,
        input_sma: nn.Module,
        token_sma: nn.Module,
        feature_layout: str,
        out_channels: int,
        tasks: tuple[str, ...],
        task_specific: bool,
        weights_loaded: bool,
        weights_file: str | None = None,
        loading_report: dict | None = None,
    ):
        super().__init__()
        self.vit = vit
        self.input_sma = input_sma
        self.token_sma = token_sma
        self.feature_layout = feature_layout
        self.out_channels = out_channels
        self.tasks = tasks
        self.task_specific = task_specific
        self.weights_loaded = weights_loaded
        self.weights_file = Path(weights_file) if weights_file else None
        self.loading_report = loading_report or {}

    def forward(self, images: Tensor, task: str | None = None) -> Tensor:
        self.route(task)
        images = self.input_sma(images)
        return self.feature_map(self.vit(images), (images.shape[-2] // PATCH_SIZE, images.shape[-1] // PATCH_SIZE))

    def route(self, task: str | None) -> None:
        """Point task-specific (TESLA) adapters at `task`; nothing to do for a shared encoder."""
        if self.task_specific:
            if task not in self.tasks:
                raise ValueError(f"this encoder has task-specific adapters: pass task= one of {list(self.tasks)}, got {task!r}")
            route_to_task(self.vit, task)

    def feature_map(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """The ViT's final-normalised tokens (B, prefix + h*w, D) -> the feature map of `feature_layout`
        (token SMA applied). The finishing step of forward, also used by stages.py."""
        patch_tokens = tokens[:, self.vit.num_prefix_tokens :]
        batch, count, dim = patch_tokens.shape
        height, width = grid
        feature_map = self.token_sma(patch_tokens.transpose(1, 2).reshape(batch, dim, height, width))
        if self.feature_layout == "spatial":
            return feature_map
        if dim % height:
            raise ValueError(f"release_view needs the width {dim} divisible by the patch rows {height}")
        return feature_map.flatten(2).transpose(1, 2).reshape(batch, count, height, dim // height)


def _vit_shape(config: EncoderConfig) -> tuple[ViTShape, int]:
    """The variant's shape with the config's overrides, and its register count."""
    base = config.variant.removesuffix(REGISTERS_SUFFIX)
    if base not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise InputError("model.encoder.variant", f"unknown DINOv2 variant {config.variant!r} (known: {known}, each with an optional {REGISTERS_SUFFIX} suffix)")
    overrides = {"depth": config.depth, "dim": config.embed_dim, "heads": config.num_heads}
    shape = dataclasses.replace(VARIANTS[base], **{name: value for name, value in overrides.items() if value is not None})
    if shape.dim % shape.heads:
        raise InputError("model.encoder", f"invalid ViT shape: width {shape.dim} is not divisible by {shape.heads} heads")
    registers = REGISTER_COUNT if config.variant.endswith(REGISTERS_SUFFIX) else 0
    return shape, registers


def _check_layout(config: EncoderConfig, dim: int, input_size: tuple[int, int]) -> int:
    """Validate the input size and feature layout; return the encoder's output channels."""
    height, width = input_size
    if height % PATCH_SIZE or width % PATCH_SIZE:
        raise InputError("data.input_size", f"DINOv2 needs sides that are multiples of {PATCH_SIZE}, got {height}x{width}")
    if config.feature_layout == "spatial":
        return dim
    rows = height // PATCH_SIZE
    if dim % rows:
        raise InputError("model.encoder.feature_layout", f"release_view needs the width {dim} divisible by the {rows} patch rows")
    return rows * (width // PATCH_SIZE)


def _build_sma(config: SMAConfig, dim: int, input_size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
    """(input SMA, token SMA), nn.Identity where not placed."""
    if config.placement == "off":
        return nn.Identity(), nn.Identity()
    if config.layout == "patches":
        channels = config.patch_size**2
        if any(side % config.patch_size for side in input_size):
            raise InputError("model.encoder.sma.patch_size", f"the patches layout needs input sides divisible by {config.patch_size}, got {input_size[0]}x{input_size[1]}")
    else:
        channels = config.channels if config.placement == "input" else dim
    if channels % config.groups:
        raise InputError("model.encoder.sma.groups", f"{config.groups} groups do not divide the {channels} channels of the {config.placement} SMA")
    if config.placement == "input":
        sma: nn.Module = InputSMA(config.channels, config.groups, patch_size=config.patch_size if config.layout == "patches" else None)
        modules = (sma, nn.Identity())
    else:
        sma = TokenSMA(dim, config.groups)
        modules = (nn.Identity(), sma)
    sma.requires_grad_(config.trainable)
    return modules


def load_weights(vit: DinoVisionTransformer, path: str | Path, prefix: str = "") -> dict:
    """Load an official DINOv2 or a Depth Anything checkpoint into `vit` (adapted or not); only
    adapter parameters may be absent from the file. Returns the loading report (format, keys ignored)."""
    weights = read_dino_weights(path, prefix)
    state_dict = weights.state_dict
    architecture = detect_architecture(state_dict, path)
    report = check_keys(vit, state_dict)
    report = dataclasses.replace(report, missing=[key for key in report.missing if not is_adapter_key(key)])
    if not report.exact:
        raise InputError(
            path,
            f"does not match the configured encoder (the file holds {architecture.variant}, depth {architecture.depth}, "
            f"width {architecture.dim}): {report.describe()}",
        )
    # assign: `vit` may live on the meta device; the file's tensors become its parameters, in the model's dtype.
    expected = vit.state_dict()
    vit.load_state_dict({key: value.to(expected[key].dtype) for key, value in state_dict.items()}, strict=False, assign=True)
    return {"format": weights.source_format, "ignored": weights.ignored}


@ENCODERS.register("dinov2")
def build_dinov2_encoder(config: EncoderConfig, tasks: tuple[str, ...], input_size: tuple[int, int]) -> DinoV2Encoder:
    shape, registers = _vit_shape(config)
    out_channels = _check_layout(config, shape.dim, input_size)
    input_sma, token_sma = _build_sma(config.sma, shape.dim, input_size)
    # With a checkpoint, build on the meta device: a random initialisation (minutes for a giant on CPU) would be overwritten.
    with torch.device("meta") if config.weights else contextlib.nullcontext():
        vit = DinoVisionTransformer(shape.depth, shape.dim, shape.heads, swiglu=shape.swiglu, registers=registers)
    loading_report = load_weights(vit, config.weights, config.weights_prefix) if config.weights else {}
    apply_adapters(vit, config.adapter, tasks)  # after loading, so the adapters are created on the weights' device
    if config.freeze:
        for name, parameter in vit.named_parameters():
            parameter.requires_grad_(is_adapter_key(name))
    return DinoV2Encoder(
        vit,
        input_sma,
        token_sma,
        feature_layout=config.feature_layout,
        out_channels=out_channels,
        tasks=tuple(tasks),
        task_specific=config.adapter.tesla,
        weights_loaded=bool(config.weights),
        weights_file=config.weights,
        loading_report=loading_report,
    )
