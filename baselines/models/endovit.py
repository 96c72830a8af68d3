"""The "endovit" encoder: EndoViT's ViT-B/16 (MAE pre-training on Endo700k) as a feature map.

The layout is timm's / MAE's VisionTransformer: cls_token, pos_embed (1, 1 + 14*14, 768),
patch_embed.proj, blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm;
LayerNorm eps 1e-6, no LayerScale, exact GELU. The released file is a dict whose "model" entry
is the MAE state dict: its decoder (decoder_*, mask_token) is ignored and reported, every
encoder key and shape must match. The file also holds objects (an argparse.Namespace of the
training arguments, optimizer state): they are never unpickled, only named as refused
(mtlbench.checkpoints.load_tensors_refusing_objects). Inputs are normalised with the
Endo700k statistics (data.normalise "endo700k").
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.config import NO_ADAPTER, EncoderConfig
from baselines.models.registries import ENCODERS
from mtlbench.checkpoints import SHOWN_KEYS, check_keys, inspection, load_tensors_refusing_objects
from mtlbench.errors import InputError

PATCH_SIZE = 16
LAYER_NORM_EPS = 1e-6
BASE = {"depth": 12, "dim": 768, "heads": 12}
DECODER_PREFIXES = ("decoder_", "mask_token")
MODEL_ENTRY = "model"


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, count, dim = x.shape
        q, k, v = self.qkv(x).view(batch, count, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, count, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH_SIZE, PATCH_SIZE)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class MAEVisionTransformer(nn.Module):
    """forward(images) -> the normalised patch tokens as a map (B, dim, H/16, W/16)."""

    def __init__(self, depth: int, dim: int, heads: int, grid: int = 14):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.patch_embed = PatchEmbed(dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)

    def _positions(self, rows: int, columns: int) -> Tensor:
        cls_position, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = math.isqrt(patches.shape[1])
        if (rows, columns) == (grid, grid):
            return self.pos_embed
        patches = patches.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=(rows, columns), mode="bicubic", align_corners=False)
        return torch.cat([cls_position, patches.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.prepare_tokens(images)
        for block in self.blocks:
            tokens = block(tokens)
        return self.feature_map(tokens, (images.shape[-2] // PATCH_SIZE, images.shape[-1] // PATCH_SIZE))

    def prepare_tokens(self, images: Tensor) -> Tensor:
        """The tokens the first block reads: (B, 1 + h*w, dim), CLS first, positions added (stages.py runs the blocks itself)."""
        rows, columns = images.shape[-2] // PATCH_SIZE, images.shape[-1] // PATCH_SIZE
        tokens = self.patch_embed(images)
        return torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1) + self._positions(rows, columns)

    def feature_map(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """The last block's tokens (B, 1 + h*w, dim) -> the normalised patch tokens as a map (B, dim, h, w)."""
        patches = self.norm(tokens)[:, 1:]
        return patches.transpose(1, 2).reshape(len(tokens), -1, *grid)


@dataclass(frozen=True)
class EndoViTWeights:
    state: dict[str, Tensor]  # the encoder's tensors
    ignored: tuple[str, ...]  # decoder keys of the MAE state dict
    refused: tuple[str, ...]  # classes of objects in the file that were not built


def read_endovit_weights(path: str | Path) -> EndoViTWeights:
    path = Path(path)
    loaded, refused = load_tensors_refusing_objects(path)
    state = loaded.get(MODEL_ENTRY) if isinstance(loaded, dict) and isinstance(loaded.get(MODEL_ENTRY), dict) else loaded
    if not isinstance(state, dict):
        raise InputError(path, f"holds a {type(state).__name__}, not an EndoViT checkpoint (a dict with a 'model' state dict)")
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, Tensor)]
    if not_tensors:
        raise InputError(path, f"the state dict has entries that are not tensors: {', '.join(not_tensors[:SHOWN_KEYS])}")
    ignored = tuple(key for key in state if key.startswith(DECODER_PREFIXES))
    encoder_state = {key: value for key, value in state.items() if not key.startswith(DECODER_PREFIXES)}
    return EndoViTWeights(encoder_state, ignored, tuple(refused))


def detect_shape(state: dict[str, Tensor], path: str | Path) -> dict[str, int]:
    """depth, dim and heads (heads: dim / 64, as every ViT of this family) from the keys."""
    if "pos_embed" not in state or "patch_embed.proj.weight" not in state:
        raise InputError(path, "not an EndoViT / MAE ViT state dict (no pos_embed or patch_embed.proj.weight)")
    dim = state["pos_embed"].shape[-1]
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    return {"depth": depth, "dim": dim, "heads": max(1, dim // 64)}


def load_endovit(vit: MAEVisionTransformer, path: str | Path) -> EndoViTWeights:
    weights = read_endovit_weights(path)
    report = check_keys(vit, weights.state)
    if not report.exact:
        raise InputError(path, f"does not match the configured EndoViT encoder: {report.describe()}")
    not_float = [key for key, value in weights.state.items() if not value.is_floating_point()]
    if not_float:
        raise InputError(path, f"tensors that are not floating point: {', '.join(not_float[:SHOWN_KEYS])}")
    expected = vit.state_dict()
    vit.load_state_dict({key: value.to(expected[key].dtype) for key, value in weights.state.items()}, assign=True)
    return weights


class EndoViTEncoder(nn.Module):
    task_specific = False

    def __init__(self, vit: MAEVisionTransformer, out_channels: int, weights: EndoViTWeights | None, weights_file: Path | None):
        super().__init__()
        self.vit = vit
        self.out_channels = out_channels
        self.weights_loaded = weights is not None
        self.weights_file = weights_file
        self.loading_report = {} if weights is None else {"ignored": list(weights.ignored), "refused": list(weights.refused)}

    def forward(self, images: Tensor, task: str | None = None) -> Tensor:
        return self.vit(images)


@ENCODERS.register("endovit")
def build_endovit_encoder(config: EncoderConfig, tasks: tuple[str, ...], input_size: tuple[int, int]) -> EndoViTEncoder:
    if config.adapter.kind != NO_ADAPTER or config.sma.placement != "off" or config.feature_layout != "spatial":
        raise InputError("model.encoder", "the endovit encoder takes no adapter, no SMA and only the spatial feature layout")
    if input_size[0] % PATCH_SIZE or input_size[1] % PATCH_SIZE:
        raise InputError("data.input_size", f"EndoViT needs sides that are multiples of {PATCH_SIZE}, got {input_size[0]}x{input_size[1]}")
    shape = {**BASE, **{key: value for key, value in (("depth", config.depth), ("dim", config.embed_dim), ("heads", config.num_heads)) if value is not None}}
    if shape["dim"] % shape["heads"]:
        raise InputError("model.encoder", f"invalid ViT shape: width {shape['dim']} is not divisible by {shape['heads']} heads")
    with torch.device("meta") if config.weights else contextlib.nullcontext():
        vit = MAEVisionTransformer(shape["depth"], shape["dim"], shape["heads"])
    weights = load_endovit(vit, config.weights) if config.weights else None
    if config.freeze:
        vit.requires_grad_(False)
    return EndoViTEncoder(vit, shape["dim"], weights, Path(config.weights) if config.weights else None)


def inspect_endovit(path: str | Path) -> dict:
    """What `mtlbench weights inspect` reports for an EndoViT file."""
    weights = read_endovit_weights(path)
    shape = detect_shape(weights.state, path)
    with torch.device("meta"):
        vit = MAEVisionTransformer(shape["depth"], shape["dim"], shape["heads"])
    # the head count is not stored in the weights (ViT-B/16 has 12): not shown
    architecture = f"MAE ViT (depth {shape['depth']}, width {shape['dim']}, patch {PATCH_SIZE})"
    return inspection("endovit", architecture, vit, weights.state, weights.ignored, weights.refused)
