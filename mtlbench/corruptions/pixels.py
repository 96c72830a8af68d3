"""Conversions between the uint8 images callers pass, the float images corruptions compute on, and
Pillow images; plus rounding of scaled lengths."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / np.float32(255)


def to_uint8(image: np.ndarray) -> np.ndarray:
    # Rounding, not truncation, so a corruption that changes nothing gives back the same bytes.
    return np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def to_pil(image: np.ndarray) -> Image.Image:
    """A float image in [0, 1] as an RGB Pillow image."""
    return Image.fromarray(to_uint8(image))


def from_pil(picture: Image.Image) -> np.ndarray:
    return to_float(np.asarray(picture.convert("RGB")))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 RGB image resized bilinearly, as the release resizes."""
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def whole_pixels(length: float, minimum: int = 1) -> int:
    """A scaled length rounded half up to whole pixels; at least `minimum` so that small images
    still get the effect (a shift or streak of 0 pixels would do nothing)."""
    return max(minimum, int(length + 0.5))
