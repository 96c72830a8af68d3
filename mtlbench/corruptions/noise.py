"""Per-pixel noises. They act on single pixels, so no parameter depends on the image size."""

from __future__ import annotations

import numpy as np

from mtlbench.corruptions.registry import Context, register


@register("gaussian_noise", sigma=(0.08, 0.12, 0.18, 0.26, 0.38))
def gaussian_noise(image: np.ndarray, context: Context, sigma: float) -> np.ndarray:
    return image + sigma * context.rng.standard_normal(image.shape, dtype=np.float32)


@register("shot_noise", rate=(60, 25, 12, 5, 3), note="Poisson(x * rate) / rate")
def shot_noise(image: np.ndarray, context: Context, rate: float) -> np.ndarray:
    return context.rng.poisson(image * rate) / rate


@register(
    "impulse_noise",
    amount=(0.03, 0.06, 0.09, 0.17, 0.27),
    note="salt-and-pepper: each channel value is replaced with probability `amount`, half by 0, half by 1",
)
def impulse_noise(image: np.ndarray, context: Context, amount: float) -> np.ndarray:
    # One uniform draw decides both whether and how a value flips, so a higher amount flips a
    # superset of the values a lower one flips under the same seed.
    draw = context.rng.random(image.shape, dtype=np.float32)
    noisy = np.where(draw < amount / 2, 0.0, image)
    return np.where((draw >= amount / 2) & (draw < amount), 1.0, noisy)


@register("speckle_noise", sigma=(0.15, 0.20, 0.35, 0.45, 0.60), note="x + x * N(0, sigma)")
def speckle_noise(image: np.ndarray, context: Context, sigma: float) -> np.ndarray:
    return image * (1 + sigma * context.rng.standard_normal(image.shape, dtype=np.float32))
