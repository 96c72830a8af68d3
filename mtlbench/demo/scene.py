"""Rendering primitives shared by the demo generators.

Images are float32 (H, W, 3) arrays in [0, 1] until they are written; masks are bool (H, W);
points are (x, y) in pixels. Every random choice comes from a generator the caller passes in,
so a scene is a pure function of its seed. Shapes are rasterised with Pillow's ImageDraw
(deterministic, no anti-aliasing) so that a drawn object and its label cover the same pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mtlbench.noise_fields import fractal_noise, value_noise

Point = tuple[float, float]


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of every pixel; read-only because the arrays are shared."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def mix(dark: tuple[float, float, float], light: tuple[float, float, float], t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two colours by `t` in [0, 1]."""
    dark_rgb, light_rgb = np.asarray(dark, np.float32), np.asarray(light, np.float32)
    return dark_rgb + (light_rgb - dark_rgb) * t[..., None]


def tissue_texture(
    rng: np.random.Generator,
    height: int,
    width: int,
    dark: tuple[float, float, float],
    light: tuple[float, float, float],
    vessel: tuple[float, float, float],
    cell: float = 48.0,
    vessel_strength: float = 0.45,
) -> np.ndarray:
    """Wet tissue: mottled colour, a network of thin vessels (iso-lines of a second noise field)."""
    mottle = fractal_noise(rng, height, width, cell)
    image = mix(dark, light, np.clip((mottle - 0.25) * 2.0, 0.0, 1.0))
    veins = fractal_noise(rng, height, width, cell * 1.2, octaves=5)
    vessel_weight = np.clip(1.0 - np.abs(veins - 0.5) / 0.012, 0.0, 1.0) ** 0.5 * vessel_strength
    image += (np.asarray(vessel, np.float32) - image) * vessel_weight[..., None]
    grain = value_noise(rng, height, width, 2.5)
    return image * (0.94 + 0.12 * grain)[..., None]


def specular_glints(rng: np.random.Generator, height: int, width: int, cell: float, coverage: float) -> np.ndarray:
    """Weight in [0, 1] of small bright reflections on wet surfaces."""
    noise = fractal_noise(rng, height, width, cell, octaves=2)
    threshold = 1.0 - coverage
    return np.clip((noise - threshold) / (1.0 - threshold), 0.0, 1.0) ** 0.7


def disc_mask(height: int, width: int, centre: Point, radius: float) -> np.ndarray:
    ys, xs = pixel_grid(height, width)
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2


def radial_falloff(height: int, width: int, centre: Point, radius: float) -> np.ndarray:
    """exp(-(d / radius)^2): a soft spot of light, glow or haze."""
    ys, xs = pixel_grid(height, width)
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / radius**2)


def endoscope_lighting(height: int, width: int, light_centre: Point, field_radius: float, gain: float) -> np.ndarray:
    """(H, W, 1) brightness: the scope's own light is strongest near its axis and fades to the rim."""
    ys, xs = pixel_grid(height, width)
    distance = np.sqrt((xs - light_centre[0]) ** 2 + (ys - light_centre[1]) ** 2) / field_radius
    return (gain * np.clip(1.05 - 0.55 * distance**2, 0.25, 1.1))[..., None]


def blob_polygon(
    rng: np.random.Generator,
    centre: Point,
    radius: float,
    aspect: float = 1.0,
    angle: float = 0.0,
    wobble: float = 0.15,
    points: int = 48,
) -> np.ndarray:
    """(N, 2) outline of an organic blob: an ellipse whose radius varies with a few smooth harmonics."""
    theta = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    scale = np.ones_like(theta)
    for harmonic in range(2, 6):
        scale += wobble / harmonic * rng.uniform(-1, 1) * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    local = np.stack([radius * aspect * scale * np.cos(theta), radius * scale * np.sin(theta)], axis=1)
    return rotate(local, angle) + np.asarray(centre)


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def direction(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def polygon_mask(height: int, width: int, polygon: np.ndarray) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in np.asarray(polygon, np.float64)], fill=1)
    return np.asarray(canvas, dtype=bool)


def polyline_mask(height: int, width: int, points: np.ndarray, line_width: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).line(
        [tuple(p) for p in np.asarray(points, np.float64)], fill=1, width=line_width, joint="curve"
    )
    return np.asarray(canvas, dtype=bool)


def thick_polyline_polygon(points: np.ndarray, half_widths: np.ndarray | float) -> np.ndarray:
    """Outline of a band along a smooth centre line: offset left, then back along the right."""
    points = np.asarray(points, np.float64)
    tangents = np.gradient(points, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
    offsets = normals * np.broadcast_to(np.asarray(half_widths, np.float64), (len(points),))[:, None]
    return np.concatenate([points + offsets, (points - offsets)[::-1]])


def quadratic_curve(start: Point, control: Point, end: Point, samples: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, samples)[:, None]
    return (1 - t) ** 2 * np.asarray(start) + 2 * (1 - t) * t * np.asarray(control) + t**2 * np.asarray(end)


def arc_points(centre: Point, radius: float, start_angle: float, end_angle: float, samples: int = 32) -> np.ndarray:
    theta = np.linspace(start_angle, end_angle, samples)
    return np.stack([centre[0] + radius * np.cos(theta), centre[1] + radius * np.sin(theta)], axis=1)


def clip_polygon_to_disc(polygon: np.ndarray, centre: Point, radius: float, sides: int = 48) -> np.ndarray:
    """The part of a polygon inside a circle (approximated by an inscribed regular polygon)."""
    inscribed = radius * np.cos(np.pi / sides)
    if len(polygon) and (np.hypot(*(polygon - np.asarray(centre)).T) <= inscribed).all():
        return polygon
    for angle in np.linspace(0.0, 2 * np.pi, sides, endpoint=False):
        if len(polygon) == 0:
            break
        normal = direction(angle)
        polygon = clip_polygon_to_halfplane(polygon, normal, float(np.dot(centre, normal) + inscribed))
    return polygon


def clip_polygon_to_halfplane(polygon: np.ndarray, normal: np.ndarray, limit: float) -> np.ndarray:
    """The part of a polygon where dot(point, normal) <= limit (one Sutherland-Hodgman pass)."""
    values = polygon @ normal - limit
    if (values <= 0).all():
        return polygon
    kept: list[np.ndarray] = []
    for index in range(len(polygon)):
        current, following = polygon[index], polygon[(index + 1) % len(polygon)]
        value_now, value_next = values[index], values[(index + 1) % len(polygon)]
        if value_now <= 0:
            kept.append(current)
        if (value_now <= 0) != (value_next <= 0):
            kept.append(current + (following - current) * (value_now / (value_now - value_next)))
    return np.asarray(kept, dtype=np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class ShadedPart:
    """A rounded, cylinder-like part: where it is, and how bright each of its pixels is."""

    mask: np.ndarray  # bool (H, W)
    diffuse: np.ndarray  # float32 (H, W): matte brightness across the cylinder
    specular: np.ndarray  # float32 (H, W): a highlight stripe along it


def tapered_rod(
    height: int, width: int, start: Point, end: Point, start_radius: float, end_radius: float, round_end: bool = True
) -> ShadedPart:
    """A cylinder or cone seen from the side, from `start` to `end`."""
    mask = np.zeros((height, width), dtype=bool)
    diffuse = np.zeros((height, width), dtype=np.float32)
    specular = np.zeros((height, width), dtype=np.float32)
    # Shafts run far beyond the frame: only the window the rod can touch is worth computing.
    reach = max(start_radius, end_radius) + 1
    x0, x1 = max(int(min(start[0], end[0]) - reach), 0), min(int(max(start[0], end[0]) + reach) + 1, width)
    y0, y1 = max(int(min(start[1], end[1]) - reach), 0), min(int(max(start[1], end[1]) + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return ShadedPart(mask, diffuse, specular)
    ys, xs = (grid[y0:y1, x0:x1] for grid in pixel_grid(height, width))
    axis = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    length = max(float(np.hypot(*axis)), 1e-6)
    ux, uy = axis / length
    rel_x, rel_y = xs - start[0], ys - start[1]
    along = (rel_x * ux + rel_y * uy) / length
    radius = start_radius + (end_radius - start_radius) * np.clip(along, 0.0, 1.0)
    across = (rel_y * ux - rel_x * uy) / radius
    inside = (along >= 0) & (along <= 1) & (np.abs(across) <= 1)
    if round_end:
        inside |= (xs - end[0]) ** 2 + (ys - end[1]) ** 2 <= end_radius**2
    mask[y0:y1, x0:x1] = inside
    diffuse[y0:y1, x0:x1], specular[y0:y1, x0:x1] = _cylinder_light(across)
    return ShadedPart(mask, diffuse, specular)


def _cylinder_light(across: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matte and highlight brightness at a signed position across a cylinder (-1 to 1 edge to edge)."""
    across = np.clip(across, -1.0, 1.0)
    diffuse = 0.25 + 0.75 * np.sqrt(1.0 - across**2)
    # The light sits on the scope, a little off the view axis, so the highlight is off-centre.
    specular = np.exp(-(((across + 0.3) / 0.16) ** 2))
    return diffuse.astype(np.float32), specular.astype(np.float32)


def tube_shading(mask: np.ndarray, centreline: np.ndarray, half_widths: np.ndarray | float) -> ShadedPart:
    """Cylinder shading of a bent tube already rasterised as `mask`, from its nearest centre-line segment."""
    ys, xs = np.nonzero(mask)
    pixels = np.stack([xs, ys], axis=1).astype(np.float64)
    centreline = np.asarray(centreline, np.float64)
    widths = np.broadcast_to(np.asarray(half_widths, np.float64), (len(centreline),))
    nearest = np.full(len(pixels), np.inf)
    across = np.zeros(len(pixels))
    for start, end, start_width, end_width in zip(centreline[:-1], centreline[1:], widths[:-1], widths[1:]):
        segment = end - start
        length = max(float(np.hypot(*segment)), 1e-6)
        relative = pixels - start
        along = np.clip(relative @ segment / length**2, 0.0, 1.0)
        distance = np.hypot(*(relative - along[:, None] * segment).T)
        signed = (relative[:, 1] * segment[0] - relative[:, 0] * segment[1]) / length
        closer = distance < nearest
        nearest = np.where(closer, distance, nearest)
        across = np.where(closer, signed / (start_width + (end_width - start_width) * along), across)
    diffuse = np.zeros(mask.shape, np.float32)
    specular = np.zeros(mask.shape, np.float32)
    diffuse[ys, xs], specular[ys, xs] = _cylinder_light(across)
    return ShadedPart(mask, diffuse, specular)


def union(parts: list[ShadedPart]) -> ShadedPart:
    """Parts drawn in order; a later part covers an earlier one where they overlap."""
    mask = np.zeros_like(parts[0].mask)
    diffuse = np.zeros_like(parts[0].diffuse)
    specular = np.zeros_like(parts[0].specular)
    for part in parts:
        mask |= part.mask
        diffuse = np.where(part.mask, part.diffuse, diffuse)
        specular = np.where(part.mask, part.specular, specular)
    return ShadedPart(mask, diffuse, specular)


def paint_shaded(image: np.ndarray, part: ShadedPart, colour: tuple[float, float, float], shine: float) -> None:
    """Metal or plastic: the base colour scaled by the matte shading, plus a white highlight."""
    where = part.mask
    base = np.asarray(colour, np.float32)
    image[where] = base * part.diffuse[where][:, None] + shine * part.specular[where][:, None]


def paint(
    image: np.ndarray, mask: np.ndarray, colour: np.ndarray | tuple[float, float, float], alpha: float = 1.0
) -> None:
    """Blend a flat colour, or the matching pixels of a same-size colour array, into `mask`."""
    source = np.asarray(colour, np.float32)
    if source.ndim == 3:
        source = source[mask]
    image[mask] = image[mask] * (1 - alpha) + source * alpha


def blend(image: np.ndarray, colour: tuple[float, float, float], weight: np.ndarray) -> None:
    """Move every pixel towards `colour` by its weight in [0, 1] (glow, haze, stains)."""
    image += (np.asarray(colour, np.float32) - image) * weight[..., None]


def blend_image(image: np.ndarray, other: np.ndarray, weight: np.ndarray) -> None:
    """Move every pixel towards the same pixel of `other` by its weight in [0, 1]."""
    image += (other - image) * weight[..., None]


def box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Separable moving average with edge padding; cheap enough for soft shadows."""
    result = values.astype(np.float32)
    for axis in (0, 1):
        padded = np.pad(result, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        summed = np.cumsum(padded, axis=axis, dtype=np.float32)
        upper = np.take(summed, np.arange(2 * radius + 1, summed.shape[axis]), axis=axis)
        lower = np.take(summed, np.arange(0, summed.shape[axis] - 2 * radius - 1), axis=axis)
        result = ((upper - lower) / (2 * radius + 1)).astype(np.float32)
    return result


def cast_shadow(image: np.ndarray, mask: np.ndarray, offset: Point, softness: int, strength: float) -> None:
    """Darken what lies under an object lit from the scope: farther objects cast wider, fainter shadows."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0:
        return
    dx, dy = int(round(offset[0])), int(round(offset[1]))
    height, width = mask.shape
    # Only the shadow's own neighbourhood is blurred and darkened.
    top, bottom = max(rows[0] + dy - softness, 0), min(rows[-1] + dy + softness + 1, height)
    left, right = max(cols[0] + dx - softness, 0), min(cols[-1] + dx + softness + 1, width)
    if top >= bottom or left >= right:
        return
    ys, xs = np.mgrid[top:bottom, left:right]
    source_y, source_x = ys - dy, xs - dx
    inside = (source_y >= 0) & (source_y < height) & (source_x >= 0) & (source_x < width)
    shadow = np.zeros(ys.shape, dtype=np.float32)
    shadow[inside] = mask[source_y[inside], source_x[inside]]
    image[top:bottom, left:right] *= (1.0 - strength * box_blur(shadow, softness))[..., None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
