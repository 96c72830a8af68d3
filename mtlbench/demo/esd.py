"""Demo ESD raw source: a COCO instance export of endoscopic submucosal dissection frames.

Layout (`esd-coco/`): `images/esdNN_FFFFFF.png` (video prefix, frame number sampled every 30
frames), `annotations.json` (COCO instances) and `activities.csv` (one inclusive frame interval
per video and activity). Six videos of 15 frames, 320x256; each passes through the three
activities in order, and the activity decides what is in the picture:

- Marking: a ring of coagulation dots growing around a flat lesion, the electric knife at the
  next dot;
- Circumferential Incision: all dots, a cut arc outside them growing round the lesion, the
  knife at the end of the cut;
- Submucosal Dissection: the mucosal flap peeled back over blue-stained submucosa, held by the
  FPCW forceps while the FPCW knife dissects beneath it.

Deliberate variety, so that a builder's matching is exercised:

- category names are spelt unlike ESD_CLASSES (case, spaces, underscores, hyphens) and numbered
  in another order;
- only the images of esd01-esd03 carry a "video" field; the others rely on the file-name prefix;
- Mucosal Flaps instances of esd02 and esd05 are compressed RLE, every other instance polygons;
- instances overlap (the electric knife lies over marking dots and the cut).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from mtlbench.demo import scene
from mtlbench.noise_fields import value_noise
from mtlbench.pngio import write_bytes, write_png
from mtlbench.progress import Advance, ProgressFn
from mtlbench.taxonomies import ESD_ACTIVITIES

WIDTH, HEIGHT = 320, 256
VIDEOS = tuple(f"esd{number:02d}" for number in range(1, 7))
FRAMES_PER_VIDEO = 15
FRAME_STEP = 30
MIN_FRAMES_PER_ACTIVITY = 3
CAMERA_MARGIN = 20
VIDEOS_WITH_VIDEO_FIELD = frozenset(VIDEOS[:3])
VIDEOS_WITH_RLE_FLAPS = frozenset({"esd02", "esd05"})
# ESD class -> (category id, spelling in the export).
CATEGORIES: dict[str, tuple[int, str]] = {
    "Electric Knife": (1, "Electric Knife"),
    "Marking Area": (2, "marking_area"),
    "Incision Area": (3, "incision area"),
    "FPCW Knife": (4, "FPCW-knife"),
    "Mucosal Flaps": (5, "Mucosal-Flaps"),
    "FPCW Forceps": (6, "fpcw_forceps"),
}
MARKING, INCISION, DISSECTION = ESD_ACTIVITIES

MUCOSA = dict(dark=(0.80, 0.47, 0.38), light=(0.99, 0.76, 0.62), vessel=(0.72, 0.30, 0.27))
SUBMUCOSA = dict(dark=(0.30, 0.40, 0.68), light=(0.68, 0.78, 0.95), vessel=(0.40, 0.25, 0.45))
ARM_BLACK = (0.20, 0.21, 0.23)
_VIDEO_STREAM, _FRAME_STREAM = 2201, 2202


def image_name(video: str, frame_number: int) -> str:
    return f"{video}_{frame_number:06d}.png"


@dataclass(frozen=True)
class Instance:
    class_name: str
    polygons: tuple[np.ndarray, ...]  # frame coordinates, clipped to the visible field
    mask: np.ndarray  # bool (H, W): the polygons as drawn


@dataclass(frozen=True)
class VideoLook:
    mucosa: np.ndarray  # world-sized, with the lesion and wet reflections
    submucosa: np.ndarray  # world-sized: what the dissection exposes
    lesion_centre: np.ndarray
    ring_radius: float
    dot_angles: np.ndarray
    dot_radius: float
    incision_start: float
    dissection_direction: float
    knife_entry_angle: float  # where the working channel brings the electric knife in
    forceps_entry_angle: float
    fpcw_knife_entry_angle: float
    field_centre: tuple[float, float]
    field_radius: float
    camera_path: tuple[tuple[int, int], ...]


def make_look(rng: np.random.Generator) -> VideoLook:
    world_h, world_w = HEIGHT + 2 * CAMERA_MARGIN, WIDTH + 2 * CAMERA_MARGIN
    lesion_centre = np.array([world_w / 2 + rng.uniform(-18, 18), world_h / 2 + rng.uniform(-12, 12)])
    ring_radius = rng.uniform(52, 68)
    dot_count = int(rng.integers(12, 17))
    dot_angles = (
        np.linspace(0, 2 * np.pi, dot_count, endpoint=False)
        + rng.uniform(0, 2 * np.pi)
        + rng.normal(0, 0.06, dot_count)
    )
    mucosa = scene.tissue_texture(rng, world_h, world_w, cell=36.0, vessel_strength=0.35, **MUCOSA)
    # Areae gastricae: the fine cobbled pattern of the stomach lining.
    cobbles = value_noise(rng, world_h, world_w, 5.0)
    mucosa *= (0.93 + 0.1 * cobbles)[..., None]
    # The lesion: a flat, slightly reddened patch, the target of the dissection.
    lesion_outline = scene.blob_polygon(
        rng, tuple(lesion_centre), ring_radius * 0.7, rng.uniform(1.0, 1.3), rng.uniform(0, np.pi), 0.2
    )
    lesion = scene.box_blur(scene.polygon_mask(world_h, world_w, lesion_outline).astype(np.float32), 6)
    scene.blend(mucosa, (0.86, 0.42, 0.38), 0.45 * lesion)
    scene.blend(mucosa, (1.0, 0.98, 0.96), 0.9 * scene.specular_glints(rng, world_h, world_w, cell=8.0, coverage=0.06))
    return VideoLook(
        mucosa=mucosa,
        submucosa=scene.tissue_texture(rng, world_h, world_w, cell=22.0, vessel_strength=0.5, **SUBMUCOSA),
        lesion_centre=lesion_centre,
        ring_radius=ring_radius,
        dot_angles=dot_angles,
        dot_radius=rng.uniform(2.6, 3.4),
        incision_start=rng.uniform(0, 2 * np.pi),
        dissection_direction=rng.uniform(0, 2 * np.pi),
        knife_entry_angle=np.pi / 3 + rng.uniform(-0.4, 0.4),
        forceps_entry_angle=np.pi + rng.uniform(-0.5, 0.5),
        fpcw_knife_entry_angle=-np.pi / 4 + rng.uniform(-0.5, 0.5),
        field_centre=(WIDTH / 2 + rng.uniform(-3, 3), HEIGHT / 2 + rng.uniform(-3, 3)),
        field_radius=rng.uniform(150, 165),
        camera_path=camera_path(rng),
    )


def camera_path(rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    steps = rng.normal(0, 3, size=(FRAMES_PER_VIDEO, 2))
    path = np.clip(CAMERA_MARGIN + np.cumsum(steps, axis=0), 0, 2 * CAMERA_MARGIN).round().astype(int)
    return tuple((int(x), int(y)) for x, y in path)


def activity_schedule(rng: np.random.Generator) -> list[str]:
    """The three activities in order, each at least MIN_FRAMES_PER_ACTIVITY frames long."""
    spare = FRAMES_PER_VIDEO - MIN_FRAMES_PER_ACTIVITY * len(ESD_ACTIVITIES)
    lengths = MIN_FRAMES_PER_ACTIVITY + rng.multinomial(spare, [1 / len(ESD_ACTIVITIES)] * len(ESD_ACTIVITIES))
    return [activity for activity, length in zip(ESD_ACTIVITIES, lengths) for _ in range(length)]


# ---------------------------------------------------------------------------------------------
# Drawing. Every object is a set of polygons clipped to the visible field; its mask is those
# polygons rasterised, so the annotation and the picture agree.


class Frame:
    """One frame being drawn: its picture, and the instances annotated on it so far."""

    def __init__(self, look: VideoLook, offset: tuple[int, int]):
        ox, oy = offset
        self.look = look
        self.shift = np.array([ox, oy], dtype=np.float64)
        self.image = look.mucosa[oy : oy + HEIGHT, ox : ox + WIDTH].copy()
        self.submucosa = look.submucosa[oy : oy + HEIGHT, ox : ox + WIDTH]
        self.instances: list[Instance] = []

    def to_frame(self, world_points: np.ndarray) -> np.ndarray:
        return np.asarray(world_points, np.float64) - self.shift

    def rasterise(self, polygons: list[np.ndarray]) -> np.ndarray:
        """The visible part of polygons that are drawn but not annotated (highlights, inner parts)."""
        return self._visible_mask(self._visible(polygons))

    def annotate(self, class_name: str, polygons: list[np.ndarray]) -> np.ndarray:
        """Rasterise polygons and record them as an instance of `class_name`; returns the mask."""
        kept = self._visible(polygons)
        mask = self._visible_mask(kept)
        if mask.any():
            self.instances.append(Instance(class_name, kept, mask))
        return mask

    def _visible(self, polygons: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        clipped = (scene.clip_polygon_to_disc(p, self.look.field_centre, self.look.field_radius) for p in polygons)
        return tuple(p for p in clipped if len(p) >= 3)

    @staticmethod
    def _visible_mask(polygons: tuple[np.ndarray, ...]) -> np.ndarray:
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        for polygon in polygons:
            mask |= scene.polygon_mask(HEIGHT, WIDTH, polygon)
        return mask


def dot_polygon(centre: np.ndarray, radius: float) -> np.ndarray:
    return scene.arc_points(tuple(centre), radius, 0.0, 2 * np.pi * 11 / 12, samples=12)


def draw_marking_dots(frame: Frame, count: int) -> None:
    look = frame.look
    centres = [look.lesion_centre + scene.direction(a) * look.ring_radius for a in look.dot_angles[:count]]
    rims = frame.annotate("Marking Area", [dot_polygon(frame.to_frame(c), look.dot_radius + 1.2) for c in centres])
    scene.paint(frame.image, rims, (0.45, 0.22, 0.14), 0.8)
    cores = frame.rasterise([dot_polygon(frame.to_frame(c), look.dot_radius) for c in centres])
    scene.paint(frame.image, cores, (0.95, 0.91, 0.78), 0.9)


def incision_centreline(frame: Frame, sweep: float) -> np.ndarray:
    look = frame.look
    radius = look.ring_radius + 9
    return frame.to_frame(arc_around(look.lesion_centre, radius, look.incision_start, look.incision_start + sweep))


def arc_around(centre: np.ndarray, radius: float, start: float, end: float) -> np.ndarray:
    return scene.arc_points(tuple(centre), radius, start, end, samples=max(int(radius * abs(end - start) / 4), 4))


def draw_incision(rng: np.random.Generator, frame: Frame, sweep: float) -> np.ndarray:
    """A cut along the ring: red edges, pale blue submucosa in the gap. Returns where the cut ends."""
    centreline = incision_centreline(frame, sweep)
    half_widths = rng.uniform(3.5, 5.0) + rng.uniform(-0.6, 0.6, size=len(centreline))
    cut = frame.annotate("Incision Area", [scene.thick_polyline_polygon(centreline, half_widths)])
    scene.paint(frame.image, cut, (0.55, 0.07, 0.08), 0.9)
    gap = frame.rasterise([scene.thick_polyline_polygon(centreline, half_widths - 1.8)])
    scene.paint(frame.image, gap, (0.78, 0.84, 0.95), 0.85)
    return centreline[-1]


def draw_electric_knife(rng: np.random.Generator, frame: Frame, tip: np.ndarray) -> None:
    """A translucent sheath from the working channel with a short metal knife at its end."""
    look = frame.look
    entry = (
        np.asarray(look.field_centre)
        + scene.direction(look.knife_entry_angle + rng.normal(0, 0.05)) * look.field_radius * 1.3
    )
    axis = (tip - entry) / np.hypot(*(tip - entry))
    sheath_end = tip - axis * rng.uniform(7, 10)
    sheath_line = np.array([entry, sheath_end])
    needle_line = np.array([sheath_end - axis * 2, tip])
    sheath_outline = scene.thick_polyline_polygon(sheath_line, np.array([7.0, 5.0]))
    needle_outline = scene.thick_polyline_polygon(needle_line, 1.3)
    knife = frame.annotate("Electric Knife", [sheath_outline, needle_outline])
    sheath = frame.rasterise([sheath_outline])
    scene.cast_shadow(frame.image, knife, (3, 4), 3, 0.4)
    underneath = frame.image.copy()
    scene.paint_shaded(
        frame.image, scene.tube_shading(sheath, sheath_line, np.array([7.0, 5.0])), (0.80, 0.85, 0.90), 0.6
    )
    frame.image[sheath] = 0.7 * frame.image[sheath] + 0.3 * underneath[sheath]
    band = frame.rasterise(
        [scene.thick_polyline_polygon(np.array([sheath_end - axis * 9, sheath_end - axis * 6]), 5.3)]
    )
    scene.paint(frame.image, band & sheath, (0.15, 0.16, 0.18), 0.8)
    needle = frame.rasterise([needle_outline])
    scene.paint_shaded(frame.image, scene.tube_shading(needle, needle_line, 1.3), (0.70, 0.71, 0.74), 0.8)


@dataclass(frozen=True)
class Flap:
    """The cut disc of mucosa, peeled back along `peel` up to the line where depth == `edge`."""

    disc: np.ndarray  # frame coordinates
    peel: np.ndarray  # unit vector: from where the flap is still attached towards its lifted edge
    edge: float  # depth (position along `peel`) of the line where the flap starts to curl
    lip: float  # width of the curled edge
    edge_centre: np.ndarray  # middle of the edge line
    edge_half_length: float

    @classmethod
    def at(cls, frame: Frame, progress: float) -> Flap:
        look = frame.look
        radius = look.ring_radius + 9
        centre = frame.to_frame(look.lesion_centre)
        peel = scene.direction(look.dissection_direction)
        # Dissection starts at the far side of the disc and moves across it.
        from_centre = radius * (0.85 - 1.2 * progress)
        return cls(
            disc=frame.to_frame(arc_around(look.lesion_centre, radius, 0.0, 2 * np.pi * 47 / 48)),
            peel=peel,
            edge=float(centre @ peel + from_centre),
            lip=8.0,
            edge_centre=centre + peel * from_centre,
            edge_half_length=float(np.sqrt(max(radius**2 - from_centre**2, 25.0))),
        )

    def point_along_edge(self, rng: np.random.Generator, depth_past_edge: float) -> np.ndarray:
        across = np.array([-self.peel[1], self.peel[0]])
        return self.edge_centre + self.peel * depth_past_edge + across * rng.uniform(-0.4, 0.4) * self.edge_half_length


def draw_dissection(rng: np.random.Generator, frame: Frame, progress: float) -> tuple[np.ndarray, np.ndarray]:
    """The cut disc with its flap partly peeled back; returns (grasp point on the flap's lip, cutting point)."""
    flap = Flap.at(frame, progress)
    ys, xs = scene.pixel_grid(HEIGHT, WIDTH)
    depth = xs * flap.peel[0] + ys * flap.peel[1]
    sideways = ys * flap.peel[0] - xs * flap.peel[1]
    # Fibres of the stretched submucosa run in the peel direction: a random profile across them.
    wavy = sideways - sideways.min() + 4.0 * value_noise(rng, HEIGHT, WIDTH, 16.0)
    profile = rng.random(int(wavy.max() / 2) + 2)
    fibres = np.interp(wavy / 2, np.arange(len(profile)), profile)
    mucosa = frame.annotate(
        "Mucosal Flaps", [scene.clip_polygon_to_halfplane(flap.disc, flap.peel, flap.edge + flap.lip)]
    )
    exposed = frame.rasterise([flap.disc]) & ~mucosa
    scene.paint(frame.image, exposed, frame.submucosa * (0.85 + 0.25 * fibres)[..., None])
    rim = scene.polyline_mask(HEIGHT, WIDTH, np.concatenate([flap.disc, flap.disc[:1]]), 2)
    scene.paint(frame.image, rim, (0.55, 0.08, 0.09), 0.8)
    # The curled lip shows the flap's pale underside, darker where it curls back down.
    lip = mucosa & (depth > flap.edge)
    underside = scene.mix((0.98, 0.80, 0.76), (0.62, 0.38, 0.40), np.clip((depth - flap.edge) / flap.lip, 0.0, 1.0))
    scene.paint(frame.image, lip, underside)
    scene.cast_shadow(frame.image, lip, tuple(flap.peel * 4), 2, 0.4)
    grasp = flap.point_along_edge(rng, flap.lip * 0.5)
    cut = flap.point_along_edge(rng, rng.uniform(flap.lip + 5, flap.lip + 12))
    return grasp, cut


def continuum_arm(
    rng: np.random.Generator, frame: Frame, entry_angle: float, tip: np.ndarray, class_name: str, jaws: bool
) -> None:
    """A flexible, bending FPCW arm from the rim to `tip`, ending in jaws or a needle knife."""
    look = frame.look
    entry = np.asarray(look.field_centre) + scene.direction(entry_angle) * look.field_radius * 1.25
    reach = tip - entry
    bend = np.array([-reach[1], reach[0]]) * rng.uniform(-0.25, 0.25)
    centreline = scene.quadratic_curve(entry, entry + reach * 0.55 + bend, tip, samples=20)
    half_widths = np.linspace(8.0, 5.5, len(centreline))
    heading = (centreline[-1] - centreline[-2]) / np.hypot(*(centreline[-1] - centreline[-2]))
    if jaws:
        opening = rng.uniform(0.1, 0.3)
        ends = [tip + scene.rotate(heading[None, :], side * opening)[0] * 10 for side in (-0.5, 0.5)]
        end_lines = [np.array([tip - heading, end]) for end in ends]
        end_widths = np.array([2.6, 0.8])
    else:
        end_lines = [np.array([tip - heading, tip + heading * 9])]
        end_widths = np.array([1.2, 0.9])
    arm_outline = scene.thick_polyline_polygon(centreline, half_widths)
    end_outlines = [scene.thick_polyline_polygon(line, end_widths) for line in end_lines]
    whole = frame.annotate(class_name, [arm_outline, *end_outlines])
    scene.cast_shadow(frame.image, whole, (4, 5), 4, 0.45)
    arm = frame.rasterise([arm_outline])
    scene.paint_shaded(frame.image, scene.tube_shading(arm, centreline, half_widths), ARM_BLACK, 0.45)
    # The bending section is a stack of short disks: dark seams across its distal half.
    tangents = np.gradient(centreline, axis=0)
    for point, tangent, width in list(zip(centreline, tangents, half_widths))[10:-1:2]:
        normal = np.array([-tangent[1], tangent[0]]) / np.hypot(*tangent)
        seam = scene.polyline_mask(HEIGHT, WIDTH, np.array([point - normal * width, point + normal * width]), 1)
        scene.paint(frame.image, seam & arm, (0.06, 0.06, 0.07), 0.8)
    for line, outline in zip(end_lines, end_outlines):
        part = frame.rasterise([outline])
        scene.paint_shaded(frame.image, scene.tube_shading(part, line, end_widths), (0.72, 0.73, 0.76), 0.8)


def render_frame(
    rng: np.random.Generator, look: VideoLook, offset: tuple[int, int], activity: str, progress: float
) -> tuple[np.ndarray, list[Instance]]:
    """(RGB uint8 frame, annotated instances); `progress` in (0, 1] is how far the activity has got."""
    frame = Frame(look, offset)
    dot_count = len(look.dot_angles)
    if activity == MARKING:
        marked = max(1, int(np.ceil(dot_count * progress)))
        draw_marking_dots(frame, marked)
        next_dot = look.lesion_centre + scene.direction(look.dot_angles[marked % dot_count]) * look.ring_radius
        draw_electric_knife(rng, frame, frame.to_frame(next_dot))
    elif activity == INCISION:
        draw_marking_dots(frame, dot_count)
        cut_end = draw_incision(rng, frame, 2 * np.pi * (0.2 + 0.72 * progress))
        draw_electric_knife(rng, frame, cut_end)
    else:
        grasp, cut = draw_dissection(rng, frame, progress)
        continuum_arm(rng, frame, look.fpcw_knife_entry_angle, cut, "FPCW Knife", jaws=False)
        continuum_arm(rng, frame, look.forceps_entry_angle, grasp, "FPCW Forceps", jaws=True)
    light_centre = (WIDTH / 2 + rng.uniform(-25, 25), HEIGHT / 2 + rng.uniform(-20, 20))
    tint = rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    frame.image *= (
        scene.endoscope_lighting(HEIGHT, WIDTH, light_centre, look.field_radius, rng.uniform(0.85, 1.1)) * tint
    )
    frame.image[~scene.disc_mask(HEIGHT, WIDTH, look.field_centre, look.field_radius)] = 0.0
    return scene.to_uint8(frame.image), frame.instances


# ---------------------------------------------------------------------------------------------
# Files.


def annotation_record(annotation_id: int, image_id: int, instance: Instance, as_rle: bool) -> dict:
    if as_rle:
        rle = mask_utils.encode(np.asfortranarray(instance.mask.astype(np.uint8)))
        segmentation: list | dict = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
    else:
        segmentation = [[round(float(v), 1) for v in polygon.ravel()] for polygon in instance.polygons]
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, HEIGHT, WIDTH))
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": CATEGORIES[instance.class_name][0],
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
        "iscrowd": 0,
    }


def activity_rows(video: str, schedule: list[str]) -> list[str]:
    """Inclusive frame intervals on the video's own timeline: each runs up to the next one's start."""
    rows = []
    for activity in ESD_ACTIVITIES:
        indices = [i for i, a in enumerate(schedule) if a == activity]
        rows.append(f"{video},{indices[0] * FRAME_STEP},{(indices[-1] + 1) * FRAME_STEP - 1},{activity}")
    return rows


def write_esd(root: Path, seed: int, progress: ProgressFn) -> tuple[Path, Path, Path]:
    """Write images/, annotations.json and activities.csv; returns their paths."""
    advance: Advance = progress("ESD demo", len(VIDEOS) * FRAMES_PER_VIDEO)
    images, annotations, intervals = [], [], ["video,start_frame,end_frame,activity"]
    for video_number, video in enumerate(VIDEOS, start=1):
        video_rng = np.random.default_rng([seed, _VIDEO_STREAM, video_number])
        schedule = activity_schedule(video_rng)
        look = make_look(video_rng)
        intervals += activity_rows(video, schedule)
        for index, activity in enumerate(schedule):
            frame_rng = np.random.default_rng([seed, _FRAME_STREAM, video_number, index])
            done = schedule[: index + 1].count(activity) / schedule.count(activity)
            pixels, instances = render_frame(frame_rng, look, look.camera_path[index], activity, done)
            name = image_name(video, index * FRAME_STEP)
            write_png(root / "images" / name, pixels)
            image = {"id": len(images) + 1, "file_name": name, "width": WIDTH, "height": HEIGHT}
            if video in VIDEOS_WITH_VIDEO_FIELD:
                image["video"] = video
            images.append(image)
            for instance in instances:
                as_rle = instance.class_name == "Mucosal Flaps" and video in VIDEOS_WITH_RLE_FLAPS
                annotations.append(annotation_record(len(annotations) + 1, image["id"], instance, as_rle))
            advance()
    categories = [
        {"id": category_id, "name": spelling, "supercategory": "esd"}
        for category_id, spelling in sorted(CATEGORIES.values())
    ]
    coco = {
        "info": {"description": "mtlbench demo ESD annotations (synthetic)", "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    coco_file, activities_file = root / "annotations.json", root / "activities.csv"
    write_bytes(coco_file, (json.dumps(coco, indent=1) + "\n").encode("utf-8"))
    write_bytes(activities_file, ("\n".join(intervals) + "\n").encode("utf-8"))
    return coco_file, root / "images", activities_file
