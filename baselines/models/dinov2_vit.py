"""The DINOv2 ViT with the official parameter names, and how its checkpoints are recognised.

Parameter names and shapes follow the official checkpoints exactly (see
shared/reference/dinov2-checkpoints.md), so those files load with exact key checks. Images are
expected already normalised by the data pipeline (ImageNet mean and std for official weights).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.models.depth_anything import ENCODER_PREFIX, is_depth_anything, split_encoder
from mtlbench.checkpoints import check_keys, read_state_dict, select_prefix
from mtlbench.errors import InputError

PATCH_SIZE = 14
TRAINED_GRID = 37  # 518 px / 14: the patch grid pos_embed was trained on
LAYER_NORM_EPS = 1e-6
LAYER_SCALE_INIT = 1e-5
# The official plain models resize pos_embed by a scale factor nudged by 0.1 so that the output
# size does not round down; reproduced because the scale factor also shifts the sampling grid.
INTERPOLATE_OFFSET = 0.1


@dataclass(frozen=True)
class ViTShape:
    depth: int
    dim: int
    heads: int
    swiglu: bool = False  # giant's SwiGLU feed-forward (mlp.w12 / mlp.w3) instead of GELU (fc1 / fc2)


# The official releases; every variant also exists with 4 register tokens ("_reg4").
VARIANTS = {
    "vits14": ViTShape(depth=12, dim=384, heads=6),
    "vitb14": ViTShape(depth=12, dim=768, heads=12),
    "vitl14": ViTShape(depth=24, dim=1024, heads=16),
    "vitg14": ViTShape(depth=40, dim=1536, heads=24, swiglu=True),
}
REGISTERS_SUFFIX = "_reg4"
REGISTER_COUNT = 4
OFFICIAL_HEAD_DIM = 64  # every official variant has 64-wide heads; the head count is not in the shapes

_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")
_BLOCK_INDEX = re.compile(r"^blocks\.(\d+)\.")


class Architecture(NamedTuple):
    variant: str  # an official name such as "vitb14_reg4", or "custom" / "custom_reg4"
    depth: int
    dim: int
    heads: int


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
        tokens = self.prepare_tokens(images)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def prepare_tokens(self, images: Tensor) -> Tensor:
        """The tokens the first block reads: (B, 1 + registers + h*w, D), CLS, registers, then patches
        (positional embedding added). Split out of forward for running the blocks stage by stage (stages.py)."""
        batch, _, height, width = images.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"DINOv2 needs image sides that are multiples of {PATCH_SIZE}, got {height}x{width}")
        tokens = self.patch_embed(images)
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1).to(tokens.dtype), tokens], dim=1)
        tokens = tokens + self.interpolated_pos_embed((height // PATCH_SIZE, width // PATCH_SIZE)).to(tokens.dtype)
        if self.register_tokens is not None:  # after CLS, without positional embedding
            registers = self.register_tokens.expand(batch, -1, -1).to(tokens.dtype)
            tokens = torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)
        return tokens


def flatten_chunked_blocks(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """`blocks.<chunk>.<i>.x` -> `blocks.<i>.x`: chunked training checkpoints keep the global block index i."""
    return {_CHUNKED_BLOCK.sub(r"blocks.\1.", key): value for key, value in state_dict.items()}


class DinoWeights(NamedTuple):
    state_dict: dict[str, Tensor]  # the encoder's tensors under the official names
    source_format: str  # "dinov2" or "depth-anything"
    ignored: list[str]  # keys of the file deliberately not loaded (Depth Anything's depth head)


def read_dino_weights(path: str | Path, prefix: str = "") -> DinoWeights:
    """A DINOv2 encoder's tensors from an official checkpoint (`prefix` stripped, chunked blocks
    flattened) or from a Depth Anything file, recognised by its keys (its own prefix needs no option)."""
    state_dict = read_state_dict(path)
    if prefix in ("", ENCODER_PREFIX) and is_depth_anything(state_dict):
        encoder, ignored = split_encoder(state_dict, path)
        return DinoWeights(flatten_chunked_blocks(encoder), "depth-anything", ignored)
    return DinoWeights(flatten_chunked_blocks(select_prefix(state_dict, prefix, path)), "dinov2", [])


def read_dino_state_dict(path: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The encoder tensors of read_dino_weights."""
    return read_dino_weights(path, prefix).state_dict


def detect_architecture(state_dict: dict[str, Tensor], where: str | Path = "state dict") -> Architecture:
    """Which DINOv2 ViT the shapes describe; non-official depth/width combinations are "custom"."""
    patch_weight = state_dict.get("patch_embed.proj.weight")
    if patch_weight is None or patch_weight.ndim != 4:
        raise InputError(where, "no patch_embed.proj.weight (D, 3, 14, 14): not a DINOv2 ViT checkpoint")
    dim = patch_weight.shape[0]
    block_indices = {int(match.group(1)) for key in state_dict if (match := _BLOCK_INDEX.match(key))}
    depth = max(block_indices) + 1 if block_indices else 0
    swiglu = uses_swiglu(state_dict)
    suffix = REGISTERS_SUFFIX if "register_tokens" in state_dict else ""
    for name, shape in VARIANTS.items():
        if (shape.depth, shape.dim, shape.swiglu) == (depth, dim, swiglu):
            return Architecture(name + suffix, depth, dim, shape.heads)
    return Architecture("custom" + suffix, depth, dim, max(1, dim // OFFICIAL_HEAD_DIM))


def uses_swiglu(state_dict: dict[str, Tensor]) -> bool:
    return any(".mlp.w12." in key for key in state_dict)


def register_count(state_dict: dict[str, Tensor]) -> int:
    registers = state_dict.get("register_tokens")
    return registers.shape[1] if registers is not None and registers.ndim == 3 else 0


def inspect_weights(path: str | Path, prefix: str = "") -> dict:
    """What `mtlbench weights inspect` prints: the detected architecture and whether the file loads exactly."""
    weights = read_dino_weights(path, prefix)
    state_dict = weights.state_dict
    architecture = detect_architecture(state_dict, path)
    # On the meta device: only the shapes matter, and a giant model would cost gigabytes to allocate.
    with torch.device("meta"):
        model = DinoVisionTransformer(
            depth=architecture.depth,
            dim=architecture.dim,
            heads=architecture.heads,
            swiglu=uses_swiglu(state_dict),
            registers=register_count(state_dict),
        )
    report = check_keys(model, state_dict)
    return {
        "file": str(path),
        "format": weights.source_format,
        "ignored": weights.ignored,
        "architecture": architecture._asdict(),
        "parameters": sum(value.numel() for value in state_dict.values()),
        "tensors": len(state_dict),
        "missing": report.missing,
        "unexpected": report.unexpected,
        "mismatched": report.mismatched,
        "loads_exactly": report.exact,
    }
