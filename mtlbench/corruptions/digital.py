"""Digital corruptions: compression, resampling and colour changes. None has a length to scale:
pixelate's factor is relative to the image size."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from mtlbench.corruptions.hsv import hsv_to_rgb, rgb_to_hsv
from mtlbench.corruptions.pixels import from_pil, to_pil
from mtlbench.corruptions.registry import Context, register

SATURATION, VALUE = 1, 2  # channels of an HSV image


@register("jpeg_compression", quality=(25, 18, 15, 10, 7))
def jpeg_compression(image: np.ndarray, context: Context, quality: int) -> np.ndarray:
    encoded = io.BytesIO()
    # 4:2:0 is Pillow's default and the release's; named so that a new default cannot change the output.
    to_pil(image).save(encoded, format="JPEG", quality=quality, subsampling="4:2:0")
    return from_pil(Image.open(encoded))


@register(
    "pixelate",
    factor=(0.60, 0.50, 0.40, 0.30, 0.25),
    note="box-downscaled by the factor, then nearest-neighbour upscaled back to the original size (the release keeps the small size)",
)
def pixelate(image: np.ndarray, context: Context, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    small = to_pil(image).resize((max(1, int(width * factor)), max(1, int(height * factor))), Image.Resampling.BOX)
    return from_pil(small.resize((width, height), Image.Resampling.NEAREST))


def _change_hsv(image: np.ndarray, channel: int, change: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    hsv = rgb_to_hsv(image)
    hsv[..., channel] = np.clip(change(hsv[..., channel]), 0, 1)
    return hsv_to_rgb(hsv)


@register("saturate", multiplier=(0.3, 0.1, 2, 5, 20), offset=(0, 0, 0, 0.1, 0.2), note="HSV: S <- S * multiplier + offset")
def saturate(image: np.ndarray, context: Context, multiplier: float, offset: float) -> np.ndarray:
    return _change_hsv(image, SATURATION, lambda saturation: saturation * multiplier + offset)


@register("brightness", shift=(0.1, 0.2, 0.3, 0.4, 0.5), note="HSV: V <- V + shift (ImageNet-C's values; not in the release)")
def brightness(image: np.ndarray, context: Context, shift: float) -> np.ndarray:
    return _change_hsv(image, VALUE, lambda value: value + shift)


@register(
    "contrast",
    factor=(0.4, 0.3, 0.2, 0.1, 0.05),
    note="each channel pulled towards its mean: (x - mean) * factor + mean (ImageNet-C's values; not in the release)",
)
def contrast(image: np.ndarray, context: Context, factor: float) -> np.ndarray:
    means = image.mean(axis=(0, 1), keepdims=True)
    return (image - means) * factor + means
