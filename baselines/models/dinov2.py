"""The DINOv2 ViT with the official parameter names, and the "dinov2" encoder built from it.

Parameter names and shapes follow the official checkpoints exactly (see
shared/reference/dinov2-checkpoints.md), so those files load with exact key checks. Images are
expected already normalised by the data pipeline (ImageNet mean and std for official weights).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.config import EncoderConfig, SMAConfig
from baselines.models.adapters import apply_adapters, is_adapter_key, route_to_task
from baselines.models.checkpoints import (
    REGISTER_COUNT,
    REGISTERS_SUFFIX,
    VARIANTS,
    ViTShape,
    check_keys,
    detect_architecture,
    read_state_dict,
)
from baselines.models.registries import ENCODERS
from baselines.models.sma import InputSMA, TokenSMA
from mtlbench.errors import InputError

PATCH_SIZE = 14
TRAINED_GRID = 37  # 518 px / 14: the patch grid pos_embed was trained on
LAYER_NORM_EPS = 1e-6
LAYER_SCALE_INIT = 1e-5
# The official plain models resize pos_embed by a scale factor nudged by 0.1 so that the output
# size does not round down; reproduced because the scale factor also shifts the sampling grid.
INTERPOLATE_OFFSET = 0.1
FEATURE_LAYOUTS = ("spatial", "release_view")
SMA_PLACEMENTS = ("off", "input", "tokens")


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        query, key, value = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """Giant's feed-forward; its hidden width keeps the GELU MLP's parameter count (2/3 of 4D, rounded up to 8)."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = (int(4 * dim * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, swiglu: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = SwiGLUFFN(dim) if swiglu else Mlp(dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT/14; forward returns the final-normalised tokens (B, 1 + registers + h*w, D), CLS first."""

    def __init__(self, depth: int, dim: int, heads: int, swiglu: bool = False, registers: int = 0):
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"embedding width {dim} is not divisible by {heads} heads")
        self.num_prefix_tokens = 1 + registers
        # The official _reg4 models resize pos_embed to the exact size with antialiasing.
        self.antialiased_interpolation = registers > 0
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + TRAINED_GRID * TRAINED_GRID, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # masked-image pre-training only; kept for exact loading
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, dim)) if registers else None
        self.blocks = nn.ModuleList(Block(dim, heads, swiglu) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        self.apply(_init_linear)

    def interpolated_pos_embed(self, grid: tuple[int, int]) -> Tensor:
        """pos_embed for an h x w patch grid, resized bicubically in float32 as the official models do."""
        if grid == (TRAINED_GRID, TRAINED_GRID):
            return self.pos_embed
        entries = self.pos_embed.float()
        dim = entries.shape[-1]
        patch_map = entries[:, 1:].reshape(1, TRAINED_GRID, TRAINED_GRID, dim).permute(0, 3, 1, 2)
        if self.antialiased_interpolation:
            resized = F.interpolate(patch_map, size=grid, mode="bicubic", antialias=True)
        else:
            scale = tuple((side + INTERPOLATE_OFFSET) / TRAINED_GRID for side in grid)
            resized = F.interpolate(patch_map, scale_factor=scale, mode="bicubic", antialias=False)
        return torch.cat([entries[:, :1], resized.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)

    def forward(self, images: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"DINOv2 needs image sides that are multiples of {PATCH_SIZE}, got {height}x{width}")
        tokens = self.patch_embed(images)
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1).to(tokens.dtype), tokens], dim=1)
        tokens = tokens + self.interpolated_pos_embed((height // PATCH_SIZE, width // PATCH_SIZE)).to(tokens.dtype)
        if self.register_tokens is not None:  # after CLS, without positional embedding
            registers = self.register_tokens.expand(batch, -1, -1).to(tokens.dtype)
            tokens = torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


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

    def forward(self, images: Tensor, task: str | None = None) -> Tensor:
        if self.task_specific:
            if task not in self.tasks:
                raise ValueError(f"this encoder has task-specific adapters: pass task= one of {list(self.tasks)}, got {task!r}")
            route_to_task(self.vit, task)
        images = self.input_sma(images)
        patch_tokens = self.vit(images)[:, self.vit.num_prefix_tokens :]
        batch, count, dim = patch_tokens.shape
        height, width = images.shape[-2] // PATCH_SIZE, images.shape[-1] // PATCH_SIZE
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
    if shape.depth < 1 or shape.heads < 1 or shape.dim % shape.heads:
        raise InputError("model.encoder", f"invalid ViT shape: depth {shape.depth}, width {shape.dim}, {shape.heads} heads (width must be divisible by heads)")
    registers = REGISTER_COUNT if config.variant.endswith(REGISTERS_SUFFIX) else 0
    return shape, registers


def _check_layout(config: EncoderConfig, dim: int, input_size: tuple[int, int]) -> int:
    """Validate the input size and feature layout; return the encoder's output channels."""
    height, width = input_size
    if height <= 0 or width <= 0 or height % PATCH_SIZE or width % PATCH_SIZE:
        raise InputError("data.input_size", f"DINOv2 needs sides that are multiples of {PATCH_SIZE}, got {height}x{width}")
    if config.feature_layout not in FEATURE_LAYOUTS:
        raise InputError("model.encoder.feature_layout", f"unknown layout {config.feature_layout!r} (known: {', '.join(FEATURE_LAYOUTS)})")
    if config.feature_layout == "spatial":
        return dim
    rows = height // PATCH_SIZE
    if dim % rows:
        raise InputError("model.encoder.feature_layout", f"release_view needs the width {dim} divisible by the {rows} patch rows")
    return rows * (width // PATCH_SIZE)


def _build_sma(config: SMAConfig, dim: int) -> tuple[nn.Module, nn.Module]:
    """(input SMA, token SMA), nn.Identity where not placed."""
    if config.placement not in SMA_PLACEMENTS:
        raise InputError("model.encoder.sma.placement", f"unknown placement {config.placement!r} (known: {', '.join(SMA_PLACEMENTS)})")
    channels = {"off": None, "input": config.channels, "tokens": dim}[config.placement]
    if channels is not None and (config.groups < 1 or channels % config.groups):
        raise InputError("model.encoder.sma.groups", f"{config.groups} groups do not divide the {channels} channels of the {config.placement} SMA")
    if config.placement == "input":
        return InputSMA(config.channels, config.groups), nn.Identity()
    if config.placement == "tokens":
        return nn.Identity(), TokenSMA(dim, config.groups)
    return nn.Identity(), nn.Identity()


def load_weights(vit: DinoVisionTransformer, path: str | Path, prefix: str = "") -> None:
    """Load an official checkpoint into `vit` (adapted or not); only adapter parameters may be absent from the file."""
    state_dict = read_state_dict(path, prefix)
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


@ENCODERS.register("dinov2")
def build_dinov2_encoder(config: EncoderConfig, tasks: tuple[str, ...], input_size: tuple[int, int]) -> DinoV2Encoder:
    shape, registers = _vit_shape(config)
    out_channels = _check_layout(config, shape.dim, input_size)
    input_sma, token_sma = _build_sma(config.sma, shape.dim)
    # With a checkpoint, build on the meta device: a random initialisation (minutes for a giant on CPU) would be overwritten.
    with torch.device("meta") if config.weights else contextlib.nullcontext():
        vit = DinoVisionTransformer(shape.depth, shape.dim, shape.heads, swiglu=shape.swiglu, registers=registers)
    if config.weights:
        load_weights(vit, config.weights, config.weights_prefix)
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
    )
