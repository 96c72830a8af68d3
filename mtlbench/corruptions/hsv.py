"""RGB <-> HSV for float images in [0, 1], vectorised; hue is a fraction of a full turn."""

from __future__ import annotations

import numpy as np

# For each sixth of the hue circle, which of (v, q, p, t) gives R, G and B.
_SECTOR_CHANNELS = np.array([[0, 3, 2], [1, 0, 2], [2, 0, 3], [2, 1, 0], [3, 2, 0], [0, 2, 1]])


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    red, green, blue = np.moveaxis(rgb, -1, 0)
    value = rgb.max(axis=-1)
    spread = value - rgb.min(axis=-1)
    grey = spread == 0
    safe_spread = np.where(grey, 1, spread)
    saturation = np.where(value > 0, spread / np.where(value > 0, value, 1), 0)
    hue = np.where(
        value == red,
        (green - blue) / safe_spread,
        np.where(value == green, 2 + (blue - red) / safe_spread, 4 + (red - green) / safe_spread),
    )
    hue = np.where(grey, 0, (hue / 6) % 1)
    return np.stack([hue, saturation, value], axis=-1).astype(rgb.dtype)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    hue, saturation, value = np.moveaxis(hsv, -1, 0)
    sixths = hue * 6
    sector = np.floor(sixths).astype(np.int64) % 6
    within = sixths - np.floor(sixths)
    candidates = np.stack(
        [value, value * (1 - saturation * within), value * (1 - saturation), value * (1 - saturation * (1 - within))],
        axis=-1,
    )
    return np.take_along_axis(candidates, _SECTOR_CHANNELS[sector], axis=-1).astype(hsv.dtype)
