"""Image corruptions for robustness sets: the EndoARSS release's 12 ImageNet-C style corruptions and
its bleeding effect (the default set of MTLEndovis-Gen), plus four extras, at severities 1-5.

Parameters follow the release's table; `describe_parameters()` lists them per severity. Its
lengths (blur sigmas, glass-blur shifts, motion radius and sigma, spatter blob sigma, droplet radii,
defocus radius, smoke feature size) are in pixels of the 256x256 images the release corrupts;
`corrupt` multiplies them by min(H, W) / 256, so a corruption looks the same at any resolution.
Per-pixel noises, colour changes, JPEG quality and the relative factors of pixelate and zoom blur
need no scaling.

`release_compat=True` follows the release's protocol instead: resize to 256x256 (bilinear), corrupt
at scale 1, resize back to the original size. Both keep the image's size (the release's pixelate
does not).

All randomness comes from `np.random.default_rng(seed)`: the same image, corruption, severity and
seed give the same bytes. `output_seed` derives one seed per output from a dataset's seed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from mtlbench.corruptions.pixels import resize, to_float, to_uint8
from mtlbench.corruptions.registry import CORRUPTIONS, REFERENCE_SIZE, SEVERITIES, Context, Corruption
from mtlbench.errors import InputError

DEFAULT_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "jpeg_compression",
    "pixelate",
    "saturate",
    "spatter",
    "bleeding",
)
# Outside the release's set: ImageNet-C corruptions it leaves out, and surgical smoke.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("defocus_blur", "brightness", "contrast", "smoke")

__all__ = [
    "DEFAULT_CORRUPTIONS", "EXTRA_CORRUPTIONS", "SEVERITIES", "check_severities", "corrupt", "describe_parameters", "output_seed"
]


def check_severities(severities: Sequence[int], where: str) -> None:
    if not severities or any(isinstance(s, bool) or s not in SEVERITIES for s in severities):
        raise InputError(where, f"severities must be among {', '.join(map(str, SEVERITIES))}, got {list(severities)}")


def corrupt(image: np.ndarray, name: str, severity: int, seed: int, release_compat: bool = False) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image under a corruption at a severity in 1-5; same shape and dtype."""
    corruption = CORRUPTIONS.get(name, "corruptions")
    check_severities([severity], "corruptions")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        found = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError("corruptions", f"expected an (H, W, 3) uint8 RGB image, got {found}")
    height, width = image.shape[:2]
    if release_compat:
        small = resize(image, REFERENCE_SIZE, REFERENCE_SIZE)
        return resize(_apply(small, corruption, int(severity), seed, image_scale=1.0), height, width)
    return _apply(image, corruption, int(severity), seed, image_scale=min(height, width) / REFERENCE_SIZE)


def _apply(image: np.ndarray, corruption: Corruption, severity: int, seed: int, image_scale: float) -> np.ndarray:
    context = Context(np.random.default_rng(seed), image_scale)
    return to_uint8(corruption.function(to_float(image), context, **corruption.parameters(severity, image_scale)))


def output_seed(global_seed: int, sample_id: str, name: str, severity: int) -> int:
    """The seed of one output: the first 63 bits (big-endian) of the sha256 of the compact JSON
    `[global_seed, sample_id, name, severity]`. Unlike hash() it is the same on every platform and
    Python version, and it fits a signed 64-bit integer."""
    key = json.dumps([int(global_seed), str(sample_id), str(name), int(severity)], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") >> 1


def describe_parameters() -> dict:
    """Corruption name -> its parameters per severity, which of them scale with the image, and a
    note on anything else (schedules, departures from the release); JSON-ready."""
    return {name: CORRUPTIONS.get(name).describe() for name in DEFAULT_CORRUPTIONS + EXTRA_CORRUPTIONS}
