"""Blurs. Lengths (sigmas, shifts, radii) are in pixels at 256 px and arrive already multiplied by
the image scale; the zoom factors are relative and need no scaling."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from mtlbench.corruptions.pixels import from_pil, to_pil, whole_pixels
from mtlbench.corruptions.registry import Context, register


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")


@register("gaussian_blur", spatial=("sigma",), sigma=(1, 2, 3, 4, 6))
def gaussian_blur(image: np.ndarray, context: Context, sigma: float) -> np.ndarray:
    return _gaussian(image, sigma)


@register(
    "glass_blur",
    spatial=("sigma", "max_shift"),
    sigma=(0.7, 0.9, 1, 1.1, 1.5),
    max_shift=(1, 2, 2, 3, 4),
    iterations=(2, 1, 3, 2, 2),
    note=(
        "blur, then per iteration every pixel takes the value of a pixel displaced by a uniform integer "
        "offset in [-max_shift, max_shift] on each axis (clamped at the border), then blur again; "
        "max_shift is rounded half up to at least 1 px"
    ),
)
def glass_blur(image: np.ndarray, context: Context, sigma: float, max_shift: float, iterations: int) -> np.ndarray:
    # ImageNet-C swaps pixel pairs one at a time in a Python loop (minutes on a 1280x1024 frame).
    # A gather with independent random offsets is the vectorised equivalent: the same local
    # scrambling within the shift, though a pixel may be copied twice or dropped where the loop
    # only permutes; after the second blur the two look alike. Offsets are symmetric, where
    # ImageNet-C's randint(-shift, shift) never reaches +shift and so drifts the image.
    shift = whole_pixels(max_shift)
    height, width = image.shape[:2]
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    shuffled = _gaussian(image, sigma)
    for _ in range(iterations):
        drow, dcolumn = context.rng.integers(-shift, shift + 1, size=(2, height, width))
        shuffled = shuffled[np.clip(rows + drow, 0, height - 1), np.clip(columns + dcolumn, 0, width - 1)]
    return _gaussian(shuffled, sigma)


@register(
    "motion_blur",
    spatial=("radius", "sigma"),
    radius=(10, 15, 15, 15, 20),
    sigma=(3, 5, 8, 12, 15),
    note="one-sided streak of 2 * radius + 1 shifted copies with Gaussian weights; angle uniform in [-45, 45] degrees",
)
def motion_blur(image: np.ndarray, context: Context, radius: float, sigma: float) -> np.ndarray:
    # ImageMagick's kernel, as ImageNet-C uses it: tap i lies i pixels along the direction of
    # motion and weighs exp(-i^2 / 2 sigma^2), so the streak trails off on one side only.
    angle = np.deg2rad(context.rng.uniform(-45, 45))
    steps = np.arange(2 * whole_pixels(radius) + 1)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    offsets = np.rint(np.outer(steps, (np.sin(angle), np.cos(angle)))).astype(np.int64)
    return _weighted_shifted_sum(image, offsets, weights / weights.sum())


def _weighted_shifted_sum(image: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_i weights[i] * image[y + dy_i, x + dx_i], the border pixels repeated outwards."""
    height, width = image.shape[:2]
    margin = int(np.abs(offsets).max())
    padded = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    total = np.zeros_like(image)
    for (drow, dcolumn), weight in zip(offsets, weights.astype(image.dtype)):
        total += weight * padded[margin + drow : margin + drow + height, margin + dcolumn : margin + dcolumn + width]
    return total


def _zoom_factors(stop: float, step: float) -> tuple[float, ...]:
    """1, 1 + step, ... up to and including `stop`, counted in hundredths so that no float error
    adds or drops one (np.arange(1, 1.11, 0.01), as ImageNet-C writes it, also yields 1.11)."""
    return tuple(hundredths / 100 for hundredths in range(100, round(stop * 100) + 1, round(step * 100)))


@register(
    "zoom_blur",
    factors=tuple(_zoom_factors(stop, step) for stop, step in ((1.10, 0.01), (1.15, 0.01), (1.20, 0.02), (1.25, 0.02), (1.30, 0.03))),
    note="mean of the original and its centre crops enlarged by each factor (bilinear); factor 1 included, as in ImageNet-C",
)
def zoom_blur(image: np.ndarray, context: Context, factors: tuple[float, ...]) -> np.ndarray:
    height, width = image.shape[:2]
    picture = to_pil(image)
    total = image.copy()
    for factor in factors:
        crop_width, crop_height = width / factor, height / factor
        box = ((width - crop_width) / 2, (height - crop_height) / 2, (width + crop_width) / 2, (height + crop_height) / 2)
        total += from_pil(picture.resize((width, height), Image.Resampling.BILINEAR, box=box))
    return total / (len(factors) + 1)


@register(
    "defocus_blur",
    spatial=("radius", "alias_sigma"),
    radius=(3, 4, 6, 8, 10),
    alias_sigma=(0.1, 0.5, 0.5, 0.5, 0.5),
    note="mean over a disk of the radius, then a Gaussian of alias_sigma softening its edge (ImageNet-C's values; not in the release)",
)
def defocus_blur(image: np.ndarray, context: Context, radius: float, alias_sigma: float) -> np.ndarray:
    return _gaussian(_disk_mean(image, radius), alias_sigma)


def _disk_mean(image: np.ndarray, radius: float) -> np.ndarray:
    """Mean over the pixels within `radius`, border pixels repeated outwards.

    A 2-D convolution with the disk costs (2r + 1)^2 per pixel: about 25 s for a 1280x1024 frame
    at r = 40 (severity 5 scaled by 4). The disk is instead a stack of horizontal runs, one per
    row offset; each run's sum comes from a running sum along the row, so the cost is 2r + 1 per pixel.
    """
    height, width = image.shape[:2]
    reach = int(radius)
    padded = np.pad(image, ((reach, reach), (reach, reach), (0, 0)), mode="edge")
    running = np.zeros((padded.shape[0], padded.shape[1] + 1, 3))
    np.cumsum(padded, axis=1, dtype=np.float64, out=running[:, 1:])
    total = np.zeros_like(image)
    count = 0
    for drow in range(-reach, reach + 1):
        half = int(np.sqrt(radius**2 - drow**2))
        rows = slice(reach + drow, reach + drow + height)
        run = running[rows, reach + half + 1 : reach + half + 1 + width] - running[rows, reach - half : reach - half + width]
        total += run.astype(image.dtype)
        count += 2 * half + 1
    return total / count
