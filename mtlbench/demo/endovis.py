"""Demo EndoVis 2018 scene-segmentation and EndoVis-18-VQA raw sources.

The folders follow the real releases exactly as their zips unpack, with 40
frames per sequence at 320x256 instead of 149 at 1280x1024 so that everything runs on a CPU in
seconds. Each frame's activity is chosen first and the scene is then drawn from it, so the
activity can be learnt from the image:

- Idle: instruments pulled back towards the rim, above the tissue (wide, faint shadows);
- Grasping: a closed clasper on the tissue, with creases where it pinches;
- Retraction: an open clasper and a fold of tissue stretched back along the instrument;
- Cauterization: a glowing tip on a burn mark, in a haze of smoke;
- Suction: the suction instrument with its tip in a pool of blood;
- Suturing: a needle driver holding a curved needle, the thread running into a stitch;
- Clipping: a clip applier with a clip in its jaws, clips already placed across a vessel;
- Ultrasound_Sensing: the ultrasound probe lying on the kidney, its cable running to the rim.

Frames may show two or three instruments: a second one idle or doing another action. The
per-instrument actions in the QA files always give back the frame's activity under the
builder's rule (`frame_activity`), including frames where two actions tie.

Deliberate quirks, so that a builder's reporting has something to report:

- `seq_16/labels/frame007.png` is missing;
- `seq_2` has no QA files (neither Classification nor Sentence) for frame011;
- `seq_13` has no VQA folder at all, as in the real EndoVis-18-VQA;
- `labels.json` of release_3 and release_4 names ids 0 and 10 "background" and
  "small intestines", as some real copies do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench.demo import scene
from mtlbench.noise_fields import fractal_noise
from mtlbench.pngio import write_bytes, write_png
from mtlbench.progress import Advance, ProgressFn
from mtlbench.sources.endovis18_vqa import frame_activity
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES

WIDTH, HEIGHT = 320, 256
FRAMES_PER_SEQUENCE = 40
STEREO_DISPARITY_PX = 6
# The camera drifts over a world this much larger than the frame on every side.
CAMERA_MARGIN = 24

RELEASES: dict[str, tuple[int, ...]] = {
    "miccai_challenge_2018_release_1": (1, 2, 3, 4),
    "miccai_challenge_release_2": (5, 6, 7),
    "miccai_challenge_release_3": (9, 10, 11, 12),
    "miccai_challenge_release_4": (13, 14, 15, 16),
}
SEQUENCES = tuple(number for numbers in RELEASES.values() for number in numbers)
SEQUENCES_WITHOUT_VQA = frozenset({13})
MISSING_LABEL = (16, "frame007")
MISSING_QA = (2, "frame011")
RELEASES_WITH_VARIANT_NAMES = frozenset({"miccai_challenge_release_3", "miccai_challenge_release_4"})
VARIANT_CLASS_NAMES = {0: "background", 10: "small intestines"}

CLASS_ID = {cls.name: cls.id for cls in ENDOVIS18_CLASSES}
PALETTE = np.array([cls.color for cls in ENDOVIS18_CLASSES], dtype=np.uint8)

IDLE = ENDOVIS18_ACTIONS[0]
BUSY_ACTIVITIES = ("Grasping", "Retraction", "Cauterization", "Suction", "Suturing", "Clipping", "Ultrasound_Sensing")
DEMO_ACTIVITIES = (IDLE, *BUSY_ACTIVITIES)
BUSY_ACTIVITIES_PER_SEQUENCE = 5
# Consecutive sequences start 3 places further along BUSY_ACTIVITIES: with 5 of 7 per sequence
# this puts every busy activity into the test split (sequences 1, 5, 16) and most into each other.
ROTATION_STEP = 3

PERFORMERS: dict[str, tuple[str, ...]] = {
    IDLE: (
        "prograsp_forceps",
        "bipolar_forceps",
        "large_needle_driver",
        "monopolar_curved_scissors",
        "maryland_dissector",
    ),
    "Grasping": ("prograsp_forceps", "bipolar_forceps", "maryland_dissector"),
    "Retraction": ("prograsp_forceps", "bipolar_forceps"),
    "Cauterization": ("monopolar_curved_scissors", "bipolar_forceps", "spatulated_monopolar_cautery"),
    "Suction": ("suction",),
    "Suturing": ("large_needle_driver",),
    "Clipping": ("clip_applier",),
    "Ultrasound_Sensing": ("ultrasound_probe",),
}
# (jaw length, jaw root width), both in shaft radii; None: a single spatula blade.
JAW_SHAPES: dict[str, tuple[float, float] | None] = {
    "prograsp_forceps": (2.4, 0.6),
    "bipolar_forceps": (2.1, 0.42),
    "maryland_dissector": (2.2, 0.38),
    "large_needle_driver": (1.6, 0.6),
    "monopolar_curved_scissors": (2.0, 0.45),
    "clip_applier": (2.3, 0.5),
    "spatulated_monopolar_cautery": None,
}
# Jaw opening in radians, per action.
JAW_OPENING: dict[str, tuple[float, float]] = {
    IDLE: (0.0, 0.6),
    "Grasping": (0.03, 0.08),
    "Retraction": (0.6, 0.9),
    "Cauterization": (0.0, 0.3),
    "Suturing": (0.02, 0.05),
    "Clipping": (0.35, 0.5),
}
# Start angle of each quadrant's 90-degree sector around the frame centre (image y points down).
QUADRANT_START = {"right-bottom": 0.0, "left-bottom": np.pi / 2, "left-top": np.pi, "right-top": 1.5 * np.pi}

ACTION_QUESTIONS = (
    "What is the state of {}?",
    "What is {} doing?",
    "What is the action of {}?",
    "What is the current action of {}?",
)
SENTENCE_ACTIONS = {
    IDLE: "is idle",
    "Grasping": "is grasping the tissue",
    "Retraction": "is retracting the tissue",
    "Cauterization": "is cauterizing the tissue",
    "Suction": "is suctioning the blood",
    "Suturing": "is suturing the tissue",
    "Clipping": "is clipping the vessel",
    "Ultrasound_Sensing": "is performing ultrasound sensing on the kidney",
}
ORGAN_QUESTION = "What organ is being operated?"

# Fixed, plausible values for the demo's 320x256 frames (the real files are per procedure).
CAMERA_CALIBRATION = """\
Camera-0-F: 270.09 270.05 // left camera x,y focal dist in pixels
Camera-0-C: 174.91 140.35 // left camera x,y center in pixels
Camera-0-K: -0.0004 0.0027 0.0000 0.0000 0.0000 // left camera k1,k2,p1,p2,k3
Camera-1-F: 270.12 270.08 // right camera x,y focal dist in pixels
Camera-1-C: 168.44 140.52 // right camera x,y center in pixels
Camera-1-K: -0.0010 0.0035 0.0000 0.0000 0.0000 // right camera k1,k2,p1,p2,k3
Extrinsic-Omega: 0.0001 -0.0027 0.0000 // left to right rotation (Rodrigues)
Extrinsic-T: -4.3600 0.0500 -0.0200 // left to right translation in mm
"""

# Separate random streams, so that adding a draw to one never shifts another.
_SEQUENCE_STREAM, _FRAME_STREAM, _WORDING_STREAM = 1801, 1802, 1803

TISSUE = dict(dark=(0.55, 0.17, 0.15), light=(0.88, 0.47, 0.42), vessel=(0.42, 0.04, 0.07))
FAT = dict(dark=(0.74, 0.52, 0.24), light=(0.96, 0.83, 0.52), vessel=(0.62, 0.22, 0.15))
KIDNEY = dict(dark=(0.33, 0.06, 0.07), light=(0.62, 0.17, 0.14), vessel=(0.27, 0.03, 0.05))
INTESTINE = dict(dark=(0.68, 0.28, 0.28), light=(0.93, 0.55, 0.50), vessel=(0.55, 0.12, 0.15))
SHAFT_GREY = (0.24, 0.25, 0.27)
WRIST_SILVER = (0.64, 0.65, 0.68)
JAW_STEEL = (0.55, 0.56, 0.59)
THREAD_VIOLET = (0.36, 0.20, 0.55)


def frame_name(index: int) -> str:
    return f"frame{index:03d}"


@dataclass(frozen=True)
class InstrumentPlan:
    name: str
    action: str
    position: str


def activity_schedule(rng: np.random.Generator, sequence_index: int) -> list[str]:
    """Frame activities of one sequence: Idle and five busy activities, in shuffled segments of 2+ frames."""
    first = ROTATION_STEP * sequence_index
    segments = [IDLE] + [
        BUSY_ACTIVITIES[(first + k) % len(BUSY_ACTIVITIES)] for k in range(BUSY_ACTIVITIES_PER_SEQUENCE)
    ]
    rng.shuffle(segments)
    spare = FRAMES_PER_SEQUENCE - 2 * len(segments)
    lengths = 2 + rng.multinomial(spare, [1 / len(segments)] * len(segments))
    return [activity for activity, length in zip(segments, lengths) for _ in range(length)]


def companion_actions(rng: np.random.Generator, activity: str, force_tie: bool) -> list[str]:
    """Actions of the other instruments in a frame whose activity is `activity`."""
    rank = ENDOVIS18_ACTIONS.index
    later = [action for action in BUSY_ACTIVITIES if rank(action) > rank(activity)]
    layouts = {"alone": [], "idle helper": [IDLE]}
    if later:
        # One instrument each: the tie goes to the earlier action, which is `activity`.
        layouts["tie"] = [str(rng.choice(later))]
        if len(PERFORMERS[activity]) > 1:
            layouts["majority"] = [activity, str(rng.choice(later + [IDLE]))]
    if force_tie and "tie" in layouts:
        return layouts["tie"]
    names = sorted(layouts)
    return layouts[names[rng.integers(len(names))]]


def plan_instruments(rng: np.random.Generator, activity: str, force_tie: bool) -> tuple[InstrumentPlan, ...]:
    if activity == IDLE:
        actions = [IDLE] * int(rng.choice([1, 2, 3], p=[0.4, 0.45, 0.15]))
    else:
        actions = [activity, *companion_actions(rng, activity, force_tie)]
    names: dict[int, str] = {}
    # The action with the fewest possible instruments picks first, so every action finds one.
    for index in sorted(range(len(actions)), key=lambda i: len(PERFORMERS[actions[i]])):
        free = [name for name in PERFORMERS[actions[index]] if name not in names.values()]
        names[index] = str(rng.choice(free))
    positions = rng.permutation(list(QUADRANT_START))
    plans = tuple(InstrumentPlan(names[i], actions[i], str(positions[i])) for i in range(len(actions)))
    assert frame_activity([plan.action for plan in plans]) == activity
    return plans


# ---------------------------------------------------------------------------------------------
# Per-sequence look: the world the camera drifts over.


@dataclass
class Canvas:
    image: np.ndarray  # float32 (H, W, 3)
    labels: np.ndarray  # uint8 (H, W) class ids

    def fill(self, mask: np.ndarray, class_name: str) -> None:
        self.labels[mask] = CLASS_ID[class_name]


@dataclass(frozen=True)
class SequenceLook:
    """What stays put in a sequence: the world the camera drifts over, and the scope's field."""

    world: Canvas  # tissue and organs, (H + 2 margin, W + 2 margin)
    field_centre: tuple[float, float]  # frame coordinates
    field_radius: float
    camera_path: tuple[tuple[int, int], ...]  # world offset of each frame

    def view(self, index: int) -> Canvas:
        ox, oy = self.camera_path[index]
        window = (slice(oy, oy + HEIGHT), slice(ox, ox + WIDTH))
        return Canvas(self.world.image[window].copy(), self.world.labels[window].copy())


def make_look(rng: np.random.Generator) -> SequenceLook:
    world_h, world_w = HEIGHT + 2 * CAMERA_MARGIN, WIDTH + 2 * CAMERA_MARGIN
    world = Canvas(scene.tissue_texture(rng, world_h, world_w, **TISSUE), np.zeros((world_h, world_w), np.uint8))
    fat_patches = np.clip((fractal_noise(rng, world_h, world_w, 60.0) - 0.58) * 5.0, 0.0, 1.0)
    fat = scene.tissue_texture(rng, world_h, world_w, cell=18.0, vessel_strength=0.3, **FAT)
    scene.blend_image(world.image, fat, fat_patches)
    kidney_radius = rng.uniform(55, 75)
    kidney_centre = (world_w / 2 + rng.uniform(-25, 25), world_h / 2 + rng.uniform(-18, 18))
    kidney = scene.blob_polygon(rng, kidney_centre, kidney_radius, rng.uniform(1.15, 1.5), rng.uniform(0, np.pi), 0.12)
    kidney_texture = scene.tissue_texture(rng, world_h, world_w, cell=30.0, vessel_strength=0.25, **KIDNEY)
    paint_organ(world, "kidney-parenchyma", kidney, kidney_texture, roundness=9)
    if rng.random() < 0.7:
        fat_centre = np.asarray(kidney_centre) + scene.direction(rng.uniform(0, 2 * np.pi)) * kidney_radius * 0.75
        covering = scene.blob_polygon(rng, tuple(fat_centre), kidney_radius * rng.uniform(0.45, 0.65), wobble=0.25)
        paint_organ(world, "covered-kidney", covering, fat, roundness=6)
    if rng.random() < 0.5:
        bowel = scene.tissue_texture(rng, world_h, world_w, cell=24.0, vessel_strength=0.45, **INTESTINE)
        for loop in intestine_loops(rng, world_w, world_h):
            paint_organ(world, "small-intestine", loop, bowel, roundness=8)
    glints = scene.specular_glints(rng, world_h, world_w, cell=10.0, coverage=0.07)
    scene.blend(world.image, (1.0, 0.97, 0.95), 0.85 * glints)
    return SequenceLook(
        world=world,
        field_centre=(WIDTH / 2 + rng.uniform(-4, 4), HEIGHT / 2 + rng.uniform(-4, 4)),
        field_radius=rng.uniform(152, 168),
        camera_path=camera_path(rng),
    )


def paint_organ(world: Canvas, class_name: str, outline: np.ndarray, texture: np.ndarray, roundness: int) -> None:
    height, width = texture.shape[:2]
    mask = scene.polygon_mask(height, width, outline)
    # Darker towards the edge of the mask: reads as a rounded, bulging organ.
    relief = 0.55 + 0.45 * scene.box_blur(mask.astype(np.float32), roundness)
    scene.paint(world.image, mask, texture * relief[..., None])
    world.fill(mask, class_name)


def intestine_loops(rng: np.random.Generator, world_w: int, world_h: int) -> tuple[np.ndarray, ...]:
    """One or two bowel loops lying along the rim, away from the kidney in the middle."""
    centre = np.array([world_w / 2, world_h / 2])
    loops = []
    side = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(1, 3))):
        start = centre + scene.direction(side - 0.9) * world_h * 0.62
        end = centre + scene.direction(side + 0.9) * world_h * 0.62
        bend = centre + scene.direction(side) * world_h * rng.uniform(0.3, 0.45)
        loops.append(scene.thick_polyline_polygon(scene.quadratic_curve(start, bend, end), rng.uniform(13, 19)))
        side += rng.uniform(0.6, 1.0)
    return tuple(loops)


def camera_path(rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    steps = rng.normal(0, 4, size=(FRAMES_PER_SEQUENCE, 2))
    path = np.clip(CAMERA_MARGIN + np.cumsum(steps, axis=0), 0, 2 * CAMERA_MARGIN).round().astype(int)
    return tuple((int(x), int(y)) for x, y in path)


# ---------------------------------------------------------------------------------------------
# One frame.


@dataclass(frozen=True)
class Pose:
    tip: np.ndarray  # where the working end touches (or hovers over) the scene
    axis: np.ndarray  # unit vector along the shaft, from the rim towards the tip
    radius: float  # shaft radius in pixels


def place_instrument(rng: np.random.Generator, plan: InstrumentPlan, scale: float) -> Pose:
    """The tip lies inside the plan's quadrant: near the kidney when busy, out towards the rim when idle."""
    angle = QUADRANT_START[plan.position] + rng.uniform(0.25, 0.75) * np.pi / 2
    reach = rng.uniform(88, 112) if plan.action == IDLE else rng.uniform(30, 70)
    tip = np.array([WIDTH / 2, HEIGHT / 2]) + scene.direction(angle) * reach
    outward = angle + rng.uniform(-0.45, 0.45)
    return Pose(tip=tip, axis=-scene.direction(outward), radius=11.0 * scale * rng.uniform(0.9, 1.1))


@dataclass(frozen=True)
class EndoWrist:
    """The parts of a wristed instrument, and where its jaws are, for what it holds."""

    shaft: scene.ShadedPart
    wrist: scene.ShadedPart
    joint: scene.ShadedPart
    jaws: tuple[scene.ShadedPart, ...]
    jaw_root: np.ndarray
    jaw_tips: tuple[np.ndarray, ...]

    def parts(self) -> list[scene.ShadedPart]:
        return [self.shaft, self.wrist, self.joint, *self.jaws]


def rod(
    start: np.ndarray, end: np.ndarray, start_radius: float, end_radius: float, round_end: bool = True
) -> scene.ShadedPart:
    return scene.tapered_rod(HEIGHT, WIDTH, tuple(start), tuple(end), start_radius, end_radius, round_end)


def build_endowrist(pose: Pose, name: str, opening: float, bend: float) -> EndoWrist:
    """Shaft from beyond the rim, a wrist bent by `bend`, and jaws ending at `pose.tip`."""
    r = pose.radius
    jaw_shape = JAW_SHAPES[name]
    jaw_length = (jaw_shape[0] if jaw_shape else 1.8) * r
    jaw_axis = scene.rotate(pose.axis[None, :], bend)[0]
    jaw_root = pose.tip - jaw_axis * jaw_length
    wrist_root = jaw_root - pose.axis * 1.6 * r
    if jaw_shape is None:
        jaw_tips = (pose.tip,)
        jaws = (rod(jaw_root, pose.tip, 0.55 * r, 0.35 * r),)
    else:
        jaw_tips = tuple(
            jaw_root + scene.rotate(jaw_axis[None, :], side * opening)[0] * jaw_length for side in (-0.5, 0.5)
        )
        jaws = tuple(rod(jaw_root, tip, jaw_shape[1] * r, 0.12 * r) for tip in jaw_tips)
    return EndoWrist(
        shaft=rod(wrist_root - pose.axis * 500, wrist_root, r, r, round_end=False),
        wrist=rod(wrist_root, jaw_root, 0.85 * r, 0.75 * r),
        joint=rod(
            wrist_root + pose.axis * 0.6 * r, wrist_root + pose.axis * 0.9 * r, 0.9 * r, 0.85 * r, round_end=False
        ),
        jaws=jaws,
        jaw_root=jaw_root,
        jaw_tips=jaw_tips,
    )


def draw_endowrist(canvas: Canvas, instrument: EndoWrist) -> None:
    for parts, colour, shine, class_name in (
        ((instrument.shaft,), SHAFT_GREY, 0.55, "instrument-shaft"),
        ((instrument.wrist,), WRIST_SILVER, 0.5, "instrument-wrist"),
        ((instrument.joint,), (0.14, 0.14, 0.15), 0.2, "instrument-wrist"),
        (instrument.jaws, JAW_STEEL, 0.65, "instrument-clasper"),
    ):
        for shaded in parts:
            scene.paint_shaded(canvas.image, shaded, colour, shine)
            canvas.fill(shaded.mask, class_name)


@dataclass
class FrameEffects:
    """Light and smoke that are added after the scene is lit, so they stay bright."""

    glows: list[np.ndarray]
    smoke_centres: list[np.ndarray]


def draw_tissue_response(rng: np.random.Generator, canvas: Canvas, plan: InstrumentPlan, pose: Pose) -> None:
    """What the action does to the tissue under the tip; drawn before any instrument covers it."""
    if plan.action == "Grasping":
        draw_pinch_creases(rng, canvas, pose)
    elif plan.action == "Retraction":
        draw_stretched_fold(rng, canvas, pose)
    elif plan.action == "Cauterization":
        draw_burn_mark(rng, canvas, pose)
    elif plan.action == "Clipping":
        draw_clipped_vessel(rng, canvas, pose)
    elif plan.action == "Suction":
        draw_blood_pool(rng, canvas, pose)


def draw_instrument(
    rng: np.random.Generator, canvas: Canvas, plan: InstrumentPlan, pose: Pose, effects: FrameEffects
) -> None:
    """The instrument with its shadow, and whatever it holds."""
    if plan.name == "suction":
        draw_suction_tube(rng, canvas, pose)
        return
    if plan.name == "ultrasound_probe":
        draw_ultrasound_probe(canvas, pose)
        return
    low, high = JAW_OPENING[plan.action]
    instrument = build_endowrist(pose, plan.name, rng.uniform(low, high), rng.uniform(-0.45, 0.45))
    cast_instrument_shadow(rng, canvas, scene.union(instrument.parts()).mask, plan.action == IDLE)
    draw_endowrist(canvas, instrument)
    if plan.action == "Suturing":
        draw_needle_and_thread(rng, canvas, pose)
    elif plan.action == "Clipping":
        draw_clip_in_jaws(canvas, instrument)
    elif plan.action == "Cauterization":
        effects.glows.append(pose.tip)
        effects.smoke_centres.append(pose.tip + rng.normal(0, 12, size=2) + np.array([0.0, -20.0]))


def cast_instrument_shadow(rng: np.random.Generator, canvas: Canvas, mask: np.ndarray, idle: bool) -> None:
    if idle:
        scene.cast_shadow(canvas.image, mask, (rng.uniform(10, 18), rng.uniform(12, 20)), 7, 0.35)
    else:
        scene.cast_shadow(canvas.image, mask, (rng.uniform(2, 4), rng.uniform(3, 5)), 2, 0.5)


def draw_blood_pool(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    pool = scene.polygon_mask(HEIGHT, WIDTH, scene.blob_polygon(rng, tuple(pose.tip), rng.uniform(12, 20), wobble=0.3))
    depth = scene.radial_falloff(HEIGHT, WIDTH, tuple(pose.tip), 18.0)
    scene.paint(canvas.image, pool, scene.mix((0.50, 0.05, 0.05), (0.22, 0.01, 0.02), depth))
    for _ in range(3):
        glint = pose.tip + rng.normal(0, 6, size=2)
        scene.paint(canvas.image, pool & scene.disc_mask(HEIGHT, WIDTH, tuple(glint), 1.6), (1.0, 0.92, 0.9), 0.8)


def draw_suction_tube(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    r = 0.55 * pose.radius
    tube = rod(pose.tip - pose.axis * 500, pose.tip, r, r)
    mouth = rod(pose.tip - pose.axis * 5, pose.tip, r, r)
    cast_instrument_shadow(rng, canvas, tube.mask, idle=False)
    scene.paint_shaded(canvas.image, tube, (0.66, 0.69, 0.76), 0.7)
    scene.paint_shaded(canvas.image, mouth, (0.12, 0.12, 0.14), 0.3)
    canvas.fill(tube.mask, "suction-instrument")


def draw_ultrasound_probe(canvas: Canvas, pose: Pose) -> None:
    """A drop-in probe lying on the tissue: a pale body with a dark acoustic window, and its cable."""
    r = pose.radius
    back = pose.tip - pose.axis * 5.0 * r
    cable = rod(back - pose.axis * 500, back, 0.3 * r, 0.3 * r)
    body = rod(back, pose.tip, 1.05 * r, 0.95 * r)
    window = rod(back + pose.axis * r, pose.tip, 0.3 * r, 0.3 * r)
    probe = scene.union([cable, body])
    scene.cast_shadow(canvas.image, probe.mask, (3, 4), 3, 0.55)
    scene.paint_shaded(canvas.image, cable, (0.13, 0.13, 0.15), 0.3)
    scene.paint_shaded(canvas.image, body, (0.82, 0.82, 0.80), 0.35)
    scene.paint_shaded(canvas.image, window, (0.3, 0.32, 0.35), 0.2)
    canvas.fill(probe.mask, "ultrasound-probe")


def draw_pinch_creases(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    """Tissue gathered into the closed jaws: short dark creases fanning out ahead of the tip."""
    for angle in rng.uniform(-1.2, 1.2, size=int(rng.integers(3, 6))):
        ray = scene.rotate(pose.axis[None, :], angle)[0]
        length = rng.uniform(7, 14)
        crease = scene.polyline_mask(HEIGHT, WIDTH, np.array([pose.tip + ray * 3, pose.tip + ray * length]), 1)
        scene.paint(canvas.image, crease, (0.28, 0.04, 0.05), 0.7)
    bulge = scene.radial_falloff(HEIGHT, WIDTH, tuple(pose.tip + pose.axis * 4), 9.0)
    scene.blend(canvas.image, (0.95, 0.6, 0.55), 0.35 * bulge)


def draw_stretched_fold(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    """A tent of tissue pulled from its base, ahead of the tip, up into the open jaws."""
    across = np.array([-pose.axis[1], pose.axis[0]])
    base = pose.tip + pose.axis * rng.uniform(35, 55)
    half_width = rng.uniform(14, 22)
    outline = np.array(
        [pose.tip + across * 3, base + across * half_width, base - across * half_width, pose.tip - across * 3]
    )
    fold = scene.polygon_mask(HEIGHT, WIDTH, outline)
    ys, xs = scene.pixel_grid(HEIGHT, WIDTH)
    sideways = (xs - pose.tip[0]) * across[0] + (ys - pose.tip[1]) * across[1]
    forward = (xs - pose.tip[0]) * pose.axis[0] + (ys - pose.tip[1]) * pose.axis[1]
    # Stretch lines run from the base to the jaws and converge there; the pulled ridge blanches.
    fan = sideways / np.maximum(forward, 1.0)
    streaks = 0.5 + 0.5 * np.cos(fan * rng.uniform(30, 45))
    stretched = canvas.image * (0.8 + 0.35 * streaks)[..., None]
    scene.blend(stretched, (0.97, 0.72, 0.66), 0.3 + 0.4 * np.exp(-((fan / 0.12) ** 2)))
    edge_softness = scene.box_blur(fold.astype(np.float32), 1)
    scene.blend_image(canvas.image, stretched, edge_softness)
    canvas.fill(fold, "background-tissue")


def draw_burn_mark(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    centre = tuple(pose.tip + pose.axis * 2)
    halo = scene.polygon_mask(HEIGHT, WIDTH, scene.blob_polygon(rng, centre, rng.uniform(9, 13), wobble=0.3))
    char = scene.polygon_mask(HEIGHT, WIDTH, scene.blob_polygon(rng, centre, rng.uniform(4, 7), wobble=0.3))
    scene.paint(canvas.image, halo, (0.86, 0.80, 0.70), 0.7)
    scene.paint(canvas.image, char, (0.16, 0.08, 0.05), 0.85)


def draw_clipped_vessel(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    """A vessel crossing just ahead of the jaws, with clips already placed on it."""
    run = scene.rotate(pose.axis[None, :], np.pi / 2 + rng.uniform(-0.3, 0.3))[0]
    centre = pose.tip + pose.axis * rng.uniform(4, 8)
    vessel = scene.polyline_mask(HEIGHT, WIDTH, np.array([centre - run * 60, centre + run * 60]), 6)
    scene.paint(canvas.image, vessel, (0.45, 0.06, 0.10), 0.85)
    for offset in rng.choice([-22.0, -14.0, 14.0, 22.0], size=int(rng.integers(1, 3)), replace=False):
        middle = centre + run * offset
        clip = scene.polyline_mask(HEIGHT, WIDTH, np.array([middle - pose.axis * 6, middle + pose.axis * 6]), 3)
        scene.paint(canvas.image, clip, (0.86, 0.80, 0.58))
        canvas.fill(clip, "clamps")


def draw_clip_in_jaws(canvas: Canvas, instrument: EndoWrist) -> None:
    """A V-shaped clip held open along the inner edges of the jaws."""
    tips = instrument.jaw_tips
    middle = (tips[0] + tips[1]) / 2
    apex = instrument.jaw_root + (middle - instrument.jaw_root) * 0.3
    arm_ends = [tip + (middle - tip) * 0.3 - (tip - instrument.jaw_root) * 0.15 for tip in tips]
    clip = scene.polyline_mask(HEIGHT, WIDTH, np.array([arm_ends[0], apex, arm_ends[1]]), 3)
    scene.paint(canvas.image, clip, (0.90, 0.84, 0.62))
    canvas.fill(clip, "clamps")


def draw_needle_and_thread(rng: np.random.Generator, canvas: Canvas, pose: Pose) -> None:
    """A curved needle held in the jaws, its thread running to a stitch in the tissue."""
    across = np.array([-pose.axis[1], pose.axis[0]]) * rng.choice([-1.0, 1.0])
    radius = pose.radius * rng.uniform(1.1, 1.5)
    centre = pose.tip + across * radius * 0.8 + pose.axis * 2
    held_at = float(np.arctan2(*(pose.tip - centre)[::-1]))
    needle_points = scene.arc_points(tuple(centre), radius, held_at - 2.0, held_at + 1.6)
    needle = scene.polyline_mask(HEIGHT, WIDTH, needle_points, 2)
    tail = needle_points[0]
    stitch = tail + scene.rotate(across[None, :], rng.uniform(-0.6, 0.6))[0] * rng.uniform(30, 50)
    control = (tail + stitch) / 2 + pose.axis * rng.uniform(-20, 20)
    thread_points = np.concatenate(
        [scene.quadratic_curve(tail, control, stitch), [stitch + pose.axis * rng.uniform(6, 12)]]
    )
    thread = scene.polyline_mask(HEIGHT, WIDTH, thread_points, 2)
    entry = scene.polyline_mask(HEIGHT, WIDTH, np.array([stitch - across * 4, stitch + across * 4]), 2)
    scene.paint(canvas.image, entry, (0.30, 0.04, 0.06), 0.7)
    scene.paint(canvas.image, thread, THREAD_VIOLET)
    canvas.fill(thread, "thread")
    scene.paint(canvas.image, needle, (0.88, 0.89, 0.92))
    canvas.fill(needle, "suturing-needle")


def add_effects(rng: np.random.Generator, image: np.ndarray, effects: FrameEffects) -> None:
    for tip in effects.glows:
        scene.blend(image, (1.0, 0.62, 0.25), 0.45 * scene.radial_falloff(HEIGHT, WIDTH, tuple(tip), 14.0))
        scene.blend(image, (1.0, 0.97, 0.85), 0.95 * scene.radial_falloff(HEIGHT, WIDTH, tuple(tip), 5.0))
    for centre in effects.smoke_centres:
        wisps = fractal_noise(rng, HEIGHT, WIDTH, 40.0, octaves=3)
        density = (
            rng.uniform(0.45, 0.7) * wisps * scene.radial_falloff(HEIGHT, WIDTH, tuple(centre), rng.uniform(55, 85))
        )
        scene.blend(image, (0.88, 0.86, 0.84), density)


def render_frame(
    rng: np.random.Generator, look: SequenceLook, index: int, plans: tuple[InstrumentPlan, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 left frame, class-id label map) of one frame."""
    canvas = look.view(index)
    effects = FrameEffects([], [])
    scale = rng.uniform(0.8, 1.2)
    # Idle instruments hover nearer the camera, so they are drawn over the busy ones.
    placed = [(plan, place_instrument(rng, plan, scale)) for plan in sorted(plans, key=lambda p: p.action == IDLE)]
    for plan, pose in placed:
        draw_tissue_response(rng, canvas, plan, pose)
    for plan, pose in placed:
        draw_instrument(rng, canvas, plan, pose, effects)
    light_centre = (WIDTH / 2 + rng.uniform(-30, 30), HEIGHT / 2 + rng.uniform(-25, 25))
    tint = rng.uniform(0.94, 1.06, size=3).astype(np.float32)
    canvas.image *= (
        scene.endoscope_lighting(HEIGHT, WIDTH, light_centre, look.field_radius, rng.uniform(0.8, 1.15)) * tint
    )
    add_effects(rng, canvas.image, effects)
    outside = ~scene.disc_mask(HEIGHT, WIDTH, look.field_centre, look.field_radius)
    canvas.image[outside] = 0.0
    canvas.labels[outside] = CLASS_ID["background-tissue"]
    return scene.to_uint8(canvas.image), canvas.labels


def right_view(left: np.ndarray) -> np.ndarray:
    """The other eye sees the scene shifted sideways by the stereo disparity."""
    right = np.zeros_like(left)
    right[:, :-STEREO_DISPARITY_PX] = left[:, STEREO_DISPARITY_PX:]
    return right


# ---------------------------------------------------------------------------------------------
# Files.


def labels_json(release: str) -> str:
    variant = release in RELEASES_WITH_VARIANT_NAMES
    entries = [
        {
            "name": VARIANT_CLASS_NAMES.get(cls.id, cls.name) if variant else cls.name,
            "color": list(cls.color),
            "classid": cls.id,
        }
        for cls in ENDOVIS18_CLASSES
    ]
    return json.dumps(entries, indent=4) + "\n"


def qa_texts(rng: np.random.Generator, plans: tuple[InstrumentPlan, ...]) -> tuple[str, str]:
    """(Classification, Sentence) file contents: organ, then one action and one position line per instrument."""
    classification = [f"{ORGAN_QUESTION}|kidney"]
    sentence = [f"{ORGAN_QUESTION}|The organ being operated is kidney."]
    for plan in plans:
        question = ACTION_QUESTIONS[rng.integers(len(ACTION_QUESTIONS))].format(plan.name)
        classification.append(f"{question}|{plan.action}")
        sentence.append(f"{question}|The {plan.name} {SENTENCE_ACTIONS[plan.action]}.")
    for plan in plans:
        question = f"Where is {plan.name} located?"
        classification.append(f"{question}|{plan.position}")
        sentence.append(f"{question}|The {plan.name} is located at {plan.position}.")
    return "\n".join(classification) + "\n", "\n".join(sentence) + "\n"


def write_sequence(
    sequence_dir: Path, vqa_dir: Path | None, release: str, number: int, seed: int, advance: Advance
) -> None:
    sequence_rng = np.random.default_rng([seed, _SEQUENCE_STREAM, number])
    schedule = activity_schedule(sequence_rng, SEQUENCES.index(number))
    look = make_look(sequence_rng)
    write_bytes(sequence_dir / "labels.json", labels_json(release).encode("utf-8"))
    write_bytes(sequence_dir / "camera_calibration.txt", CAMERA_CALIBRATION.encode("utf-8"))
    for index, activity in enumerate(schedule):
        frame_rng = np.random.default_rng([seed, _FRAME_STREAM, number, index])
        # Two fixed frames per sequence pair their activity with a later-ranked one, so ties occur.
        plans = plan_instruments(frame_rng, activity, force_tie=index % 8 == 3)
        left, label_ids = render_frame(frame_rng, look, index, plans)
        name = frame_name(index)
        write_png(sequence_dir / "left_frames" / f"{name}.png", left)
        write_png(sequence_dir / "right_frames" / f"{name}.png", right_view(left))
        if (number, name) != MISSING_LABEL:
            write_png(sequence_dir / "labels" / f"{name}.png", PALETTE[label_ids])
        if vqa_dir is not None and (number, name) != MISSING_QA:
            classification, sentence = qa_texts(np.random.default_rng([seed, _WORDING_STREAM, number, index]), plans)
            write_bytes(vqa_dir / "Classification" / f"{name}_QA.txt", classification.encode("utf-8"))
            write_bytes(vqa_dir / "Sentence" / f"{name}_QA.txt", sentence.encode("utf-8"))
        advance()


def write_endovis(endovis_root: Path, vqa_root: Path, seed: int, progress: ProgressFn) -> None:
    advance = progress("EndoVis 2018 + VQA demo", len(SEQUENCES) * FRAMES_PER_SEQUENCE)
    for release, numbers in RELEASES.items():
        for number in numbers:
            vqa_dir = None if number in SEQUENCES_WITHOUT_VQA else vqa_root / f"seq_{number}" / "vqa"
            write_sequence(endovis_root / release / f"seq_{number}", vqa_dir, release, number, seed, advance)
