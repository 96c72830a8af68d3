"""Reading official DINOv2 checkpoints: load safely, unwrap, flatten, recognise, compare keys.

Users download the official files themselves; everything here treats them as untrusted
(weights_only loading) and reports any mismatch by key instead of loading non-strictly.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from mtlbench.errors import InputError


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
WRAPPER_KEYS = ("model", "state_dict", "teacher")
SHOWN_KEYS = 10

_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")
_BLOCK_INDEX = re.compile(r"^blocks\.(\d+)\.")


class Architecture(NamedTuple):
    variant: str  # an official name such as "vitb14_reg4", or "custom" / "custom_reg4"
    depth: int
    dim: int
    heads: int


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # "key: file (..) vs model (..)"

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """One line listing at most SHOWN_KEYS offending keys over all three kinds."""
        parts, shown = [], 0
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("wrong shape", self.mismatched)):
            listed = keys[: max(0, SHOWN_KEYS - shown)]
            shown += len(listed)
            if listed:
                parts.append(f"{label}: {', '.join(listed)}")
        hidden = len(self.missing) + len(self.unexpected) + len(self.mismatched) - shown
        return "; ".join(parts) + (f"; and {hidden} more" if hidden else "")


def flatten_chunked_blocks(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """`blocks.<chunk>.<i>.x` -> `blocks.<i>.x`: chunked training checkpoints keep the global block index i."""
    return {_CHUNKED_BLOCK.sub(r"blocks.\1.", key): value for key, value in state_dict.items()}


def _unwrap(loaded, path: Path) -> dict:
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                return loaded[key]
        return loaded
    raise InputError(path, f"holds a {type(loaded).__name__}, not a state dict")


def _select_prefix(state_dict: dict, prefix: str, path: Path) -> dict:
    """Keep the keys under `prefix`, without it; other keys belong to other parts of the file (e.g. a depth head)."""
    if not prefix:
        return state_dict
    selected = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not selected:
        examples = ", ".join(list(state_dict)[:3])
        raise InputError(path, f"no key starts with the prefix {prefix!r} (keys look like: {examples})")
    return selected


def read_state_dict(path: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The tensors of a checkpoint file, unwrapped from "model"/"state_dict"/"teacher", prefix stripped, blocks flattened."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # garbage bytes and files holding arbitrary objects both end here
        raise InputError(path, "not a PyTorch checkpoint the weights-only loader accepts (corrupt, or holds objects other than tensors)") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:  # truncated or malformed archives
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a readable PyTorch checkpoint ({reason})") from None
    state_dict = _select_prefix(_unwrap(loaded, path), prefix, path)
    not_tensors = [str(key) for key, value in state_dict.items() if not isinstance(value, Tensor)]
    if not_tensors:
        raise InputError(path, f"entries that are not tensors: {', '.join(not_tensors[:SHOWN_KEYS])}")
    return flatten_chunked_blocks(state_dict)


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


def check_keys(model: nn.Module, state_dict: dict[str, Tensor]) -> CheckReport:
    """Compare keys and shapes (dtype is cast on load, so it is not compared)."""
    expected = model.state_dict()
    return CheckReport(
        missing=[key for key in expected if key not in state_dict],
        unexpected=[key for key in state_dict if key not in expected],
        mismatched=[
            f"{key}: file {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
            for key, value in state_dict.items()
            if key in expected and value.shape != expected[key].shape
        ],
    )


def inspect_weights(path: str | Path, prefix: str = "") -> dict:
    """What `mtlbench weights inspect` prints: the detected architecture and whether the file loads exactly."""
    # Imported here because dinov2 uses this module to load its weights.
    from baselines.models.dinov2 import DinoVisionTransformer

    state_dict = read_state_dict(path, prefix)
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
        "architecture": architecture._asdict(),
        "parameters": sum(value.numel() for value in state_dict.values()),
        "tensors": len(state_dict),
        "missing": report.missing,
        "unexpected": report.unexpected,
        "mismatched": report.mismatched,
        "loads_exactly": report.exact,
    }
