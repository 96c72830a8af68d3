"""Depth Anything checkpoints (depth_anything_vit{s,b,l}14.pth) as a source of DINOv2 encoder weights.

The EndoARSS release initialises its backbone from these files rather than from plain DINOv2:
they hold a DINOv2 ViT fine-tuned for monocular depth under the key prefix `pretrained.` and a
DPT depth head under `depth_head.`, which EndoARSS does not use. The encoder part is loaded with
the same exact key and shape checks as an official DINOv2 file; the depth head is ignored and
reported; any other key is refused, since it would mean the file is not what it looks like.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from mtlbench.errors import InputError

ENCODER_PREFIX = "pretrained."
DEPTH_HEAD_PREFIX = "depth_head."
SHOWN_KEYS = 5


def is_depth_anything(keys) -> bool:
    keys = list(keys)
    return any(key.startswith(ENCODER_PREFIX) for key in keys) and any(key.startswith(DEPTH_HEAD_PREFIX) for key in keys)


def split_encoder(state_dict: dict[str, Tensor], path: str | Path) -> tuple[dict[str, Tensor], list[str]]:
    """(the encoder's tensors with `pretrained.` stripped, the depth-head keys not loaded)."""
    foreign = [key for key in state_dict if not key.startswith((ENCODER_PREFIX, DEPTH_HEAD_PREFIX))]
    if foreign:
        raise InputError(path, f"a Depth Anything file with keys outside {ENCODER_PREFIX}* and {DEPTH_HEAD_PREFIX}*: {', '.join(foreign[:SHOWN_KEYS])}")
    encoder = {key.removeprefix(ENCODER_PREFIX): value for key, value in state_dict.items() if key.startswith(ENCODER_PREFIX)}
    return encoder, [key for key in state_dict if key.startswith(DEPTH_HEAD_PREFIX)]
