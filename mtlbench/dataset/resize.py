"""Resize rules: how a loader brings a frame (H, W, 3) uint8 and its mask (H, W) to a size.

Each rule maps uint8 arrays to uint8 arrays, so that a prepared cache (which stores uint8) and
direct loading deliver the same pixels.

- antialias: frames bilinear with antialiasing (torch), masks nearest-exact (the source pixel
  under each target pixel's centre), so class ids are never blended.
- pil: frames bicubic and masks nearest through PIL's Image.resize, as the EndoARSS release's
  loader does (`Image.open(...).convert('RGB').resize(size)`, masks with Image.NEAREST).

A prepared cache records `rule_implementation`: the rule's RULES_VERSION and the version of the
library whose kernels compute its pixels. Change a rule, bump RULES_VERSION, and every cache made
with it is rebuilt; so is every cache made by another version of that library.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image

from mtlbench.errors import InputError

RULES_VERSION = 1

ResizeFn = Callable[[np.ndarray, np.ndarray | None, tuple[int, int]], tuple[np.ndarray, np.ndarray | None]]


def resize_antialias(image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    # torch resizes uint8 directly (fixed-point, rounded), about ten times faster than through
    # float32; the (1, 3, H, W) view of the (H, W, 3) array is channels-last, its fast path.
    frame = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]  # a copy: torch wants writable arrays
    frame = F.interpolate(frame, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    resized = np.ascontiguousarray(frame[0].permute(1, 2, 0).numpy())
    if mask is None:
        return resized, None
    return resized, mask[np.ix_(_nearest_exact(mask.shape[0], size[0]), _nearest_exact(mask.shape[1], size[1]))]


def _nearest_exact(source: int, target: int) -> np.ndarray:
    """The source index under each target pixel's centre, computed in float32 as torch's
    nearest-exact mode does (same indices; a plain index is many times faster than torch's
    kernel, which also scales badly with threads)."""
    centres = (np.arange(target, dtype=np.float32) + np.float32(0.5)) * (np.float32(source) / np.float32(target))
    return np.minimum(np.floor(centres).astype(np.int64), source - 1)


def resize_pil(image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    height, width = size
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))
    if mask is None:
        return resized, None
    return resized, np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))


RESIZE_RULES: dict[str, ResizeFn] = {"antialias": resize_antialias, "pil": resize_pil}
# The library whose kernels compute each rule's pixels: another version may round differently.
RULE_LIBRARIES = {"antialias": f"torch {torch.__version__}", "pil": f"Pillow {PIL.__version__}"}


def check_rule(rule: str) -> str:
    if rule not in RESIZE_RULES:
        raise InputError("resize", f"unknown resize rule {rule!r} (known: {', '.join(RESIZE_RULES)})")
    return rule


def resize_frame(image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int] | None, rule: str) -> tuple[np.ndarray, np.ndarray | None]:
    """`image` and `mask` at `size` by `rule`; unchanged when `size` is None or already theirs
    (both rules give back the same pixels then)."""
    if size is None or image.shape[:2] == tuple(size):
        return image, mask
    return RESIZE_RULES[rule](image, mask, tuple(size))


def rule_implementation(rule: str) -> str:
    """What computes `rule`'s pixels: the rule's version and the library whose kernels it runs."""
    return f"{rule} v{RULES_VERSION}, {RULE_LIBRARIES[rule]}"
