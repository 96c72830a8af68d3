"""Occlusions of the view: spatter on the lens (water or mud) and surgical smoke.

Lengths (blob and haze sizes) are in pixels at 256 px and arrive multiplied by the image scale.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mtlbench.corruptions.registry import Context, register
from mtlbench.noise_fields import fractal_noise

PALE_WATER = np.array([175, 238, 238], np.float32) / 255
MUD_BROWN = np.array([63, 42, 20], np.float32) / 255
SMOKE_GREY = np.array([0.86, 0.86, 0.86], np.float32)
# ImageNet-C's water shading: the distance to the nearest pool edge capped at 20 px, histogram-
# equalised, embossed with this kernel (less its centre, which the distance term restores) and
# smoothed by a 3x3 box.
EDGE_DISTANCE_CAP = 20
DIAGONAL_SLOPE = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]], np.float32)
BOX3_SIGMA = np.sqrt(2 / 3)  # the spread of a 3-px box filter


@register(
    "spatter",
    spatial=("sigma", "mud_edge_sigma"),
    loc=(0.65, 0.65, 0.65, 0.65, 0.67),
    scale=(0.3, 0.3, 0.3, 0.3, 0.4),
    sigma=(4, 3, 2, 1, 1),
    threshold=(0.69, 0.68, 0.68, 0.65, 0.65),
    water_intensity=(0.6, 0.6, 0.5, None, None),
    mud_edge_sigma=(None, None, None, 1.5, 1.5),
    mode=("water", "water", "water", "mud", "mud"),
    note=(
        "a liquid layer N(loc, scale) smoothed by sigma is thresholded into pools; water adds pale (175, 238, 238) "
        "shaded pools, mud covers them with brown (63, 42, 20). The reference's intensity column is "
        "water_intensity in water mode and, as in ImageNet-C, the sigma of the mud's soft edge in mud mode. The "
        "noise's spread is multiplied by the image scale as well, which keeps the pool coverage of 256 px"
    ),
)
def spatter(
    image: np.ndarray,
    context: Context,
    loc: float,
    scale: float,
    sigma: float,
    threshold: float,
    water_intensity: float | None,
    mud_edge_sigma: float | None,
    mode: str,
) -> np.ndarray:
    # Smoothing white noise over an s times wider footprint shrinks its spread s times (in 2-D), so
    # the per-pixel spread grows by s: the layer keeps the statistics, hence the pool coverage, it
    # has at 256 px.
    noise = loc + scale * context.image_scale * context.rng.standard_normal(image.shape[:2], dtype=np.float32)
    liquid = ndimage.gaussian_filter(noise, sigma, mode="nearest")
    liquid[liquid < threshold] = 0
    if mode == "water":
        return _water(image, liquid, water_intensity, context.image_scale)
    return _mud(image, liquid > threshold, mud_edge_sigma)


def _water(image: np.ndarray, liquid: np.ndarray, intensity: float, image_scale: float) -> np.ndarray:
    pools = liquid > 0
    edges = pools & ~ndimage.binary_erosion(pools)
    distance = np.minimum(ndimage.distance_transform_edt(~edges), EDGE_DISTANCE_CAP * image_scale)
    shade = _equalised(distance)
    # The slope of a map that spans [0, 1] over s times more pixels is s times smaller per pixel.
    relief = np.clip(shade + image_scale * ndimage.correlate(shade, DIAGONAL_SLOPE, mode="nearest"), 0, 1)
    sheen = liquid * ndimage.gaussian_filter(relief, BOX3_SIGMA * image_scale, mode="nearest")
    peak = sheen.max()
    if peak > 0:
        sheen *= intensity / peak
    return image + sheen[..., None] * PALE_WATER


def _equalised(values: np.ndarray) -> np.ndarray:
    """Histogram equalisation: each value replaced by the fraction of values at or below it."""
    _, index, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts, dtype=np.float32) / values.size)[index].reshape(values.shape)


def _mud(image: np.ndarray, pools: np.ndarray, edge_sigma: float) -> np.ndarray:
    cover = ndimage.gaussian_filter(pools.astype(np.float32), edge_sigma, mode="nearest")
    cover[cover < 0.8] = 0  # keeps the soft inner edge, drops the faint halo outside the pools
    return image * (1 - cover[..., None]) + MUD_BROWN * cover[..., None]


@register(
    "smoke",
    spatial=("cell",),
    opacity=(0.15, 0.3, 0.45, 0.6, 0.75),
    cell=64,
    note=(
        "fractal haze (4 octaves of value noise, largest features `cell` px) blended towards light grey; the "
        "blend weight is 2 * opacity * haze, clipped to 1, so opacity is its mean (not in the release)"
    ),
)
def smoke(image: np.ndarray, context: Context, opacity: float, cell: float) -> np.ndarray:
    height, width = image.shape[:2]
    haze = fractal_noise(context.rng, height, width, cell)
    density = np.clip(2 * opacity * haze, 0, 1)[..., None]
    return image + (SMOKE_GREY - image) * density
