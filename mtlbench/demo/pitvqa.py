"""Demo PitVQA raw source: endoscopic pituitary surgery frames with question|answer files.

Layout as the public release unpacks: `images/video_XX/NNNNN.png` (224x224 RGB; NNNNN is the
second of the video, one frame a second) and `QA/video_XX/NNNNN.txt` (UTF-8 `question|answer`
lines). Videos 01, 02, 03, 05, 06, 07, 12 and 13 of 15 s each; 02, 06, 12 and 13 are official
validation videos, so a split by the official list has something on both sides.

A video passes through five or six of the 14 steps in surgical order (the phase follows from the
step; the next step is the following one, end_of_step after the last; the next phase is the first
later phase of the video that differs, end_of_phase when there is none) and the step decides what
is in the picture:

- the background is the step's tissue, each with its own colours: nasal mucosa, sphenoid bone,
  blue-grey dura, yellow tumour, blood, white graft, fat, green sealant ...; the operation note
  is a fixed sentence per step, so phase, step and note can all be read from the image;
- zero, one or two instruments of the step's set, each with its own colour and tip (jaws, ring,
  ball, blade, cup, ...), the tip drawn in the quadrant (or the centre) that the QA names.

A frame has 5 QA lines without instruments, 9 with one and 12 with two: phase, step, next phase,
next step and operation; then the count once and, per instrument, which is at its position,
where its tip is and what it does.

Deliberate quirks of the real release, so that a reader's handling is exercised:

- three blurred frames have an image but no QA file (their empty files were deleted);
- one QA file ends with a blank line;
- one frame without instruments answers "Which instrument is at the centre?" with
  `no_visible_instrument` (the reference loader drops that answer): it has 6 lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench.demo import scene
from mtlbench.outputs import write_bytes
from mtlbench.pngio import write_png
from mtlbench.progress import Advance, ProgressFn

WIDTH = HEIGHT = 224
VIDEOS = (1, 2, 3, 5, 6, 7, 12, 13)
SECONDS_PER_VIDEO = 15
MIN_SECONDS_PER_STEP = 2
# (video, second) of each quirk.
BLURRED_FRAMES = frozenset({(3, 6), (7, 0), (12, 11)})
TRAILING_BLANK_LINE = (5, 4)
NO_VISIBLE_INSTRUMENT = (6, 9)
CAMERA_MARGIN = 8

END_OF_PHASE = "end_of_phase"
END_OF_STEP = "end_of_step"
POSITIONS = ("top-left", "top-right", "centre", "bottom-left", "bottom-right")
COUNTS = ("zero", "one", "two")

QUESTION_PHASE = "What is the current phase of the surgery?"
QUESTION_STEP = "What is the current step of the surgery?"
QUESTION_NEXT_PHASE = "What is the next phase of the surgery?"
QUESTION_NEXT_STEP = "What is the next step of the surgery?"
QUESTION_OPERATION = "What surgical operation is being performed?"
QUESTION_COUNT = "How many instruments are visible?"
QUESTION_AT_POSITION = "Which instrument is at the {position}?"
QUESTION_TIP = "Where is the tip of the {tool}?"
QUESTION_ACTIVITY = "What activity is the {tool} performing?"
NO_VISIBLE_INSTRUMENT_ANSWER = "no_visible_instrument"

RGB = tuple[float, float, float]
VESSEL = (0.45, 0.08, 0.10)


@dataclass(frozen=True)
class Step:
    name: str
    phase: str
    operation: str  # the operation-note sentence, fixed per step
    instruments: tuple[str, ...]  # those used in it (at least two)
    dark: RGB  # the step's tissue, from its shadows ...
    light: RGB  # ... to its highlights


# In surgical order; the notes keep the release's typo "defact".
STEPS = (
    Step(
        "nasal_corridor_creation",
        "nasal_sphenoid",
        "The middle and superior turbinates are laterally displaced",
        ("freer_elevator", "suction", "cottle"),
        (0.62, 0.24, 0.24),
        (0.93, 0.60, 0.56),
    ),
    Step(
        "anterior_sphenoidotomy",
        "nasal_sphenoid",
        "The anterior wall of the sphenoid sinus is opened",
        ("kerrisons", "surgical_drill", "nasal_cutting_forceps", "stealth_pointer"),
        (0.70, 0.45, 0.38),
        (0.97, 0.82, 0.70),
    ),
    Step(
        "septum_displacement",
        "nasal_sphenoid",
        "The posterior nasal septum is displaced to the contralateral side",
        ("cottle", "freer_elevator", "suction"),
        (0.55, 0.20, 0.30),
        (0.88, 0.55, 0.66),
    ),
    Step(
        "sphenoid_sinus_clearance",
        "nasal_sphenoid",
        "The sphenoid septations are removed to expose the sella",
        ("pituitary_rongeurs", "kerrisons", "suction"),
        (0.50, 0.35, 0.32),
        (0.85, 0.74, 0.66),
    ),
    Step(
        "sellotomy",
        "sellar",
        "The sellar floor is opened with a drill and Kerrison rongeurs",
        ("surgical_drill", "kerrisons", "micro_doppler", "stealth_pointer"),
        (0.72, 0.66, 0.55),
        (0.98, 0.95, 0.86),
    ),
    Step(
        "durotomy",
        "sellar",
        "A cruciate durotomy is performed",
        ("retractable_knife", "dural_scissors", "micro_doppler"),
        (0.35, 0.38, 0.50),
        (0.68, 0.72, 0.86),
    ),
    Step(
        "tumour_excision",
        "sellar",
        "The tumour is removed in a piecemeal fashion with ring curettes",
        ("ring_curette", "suction", "pituitary_rongeurs", "cup_forceps", "spatula_dissector"),
        (0.62, 0.52, 0.32),
        (0.92, 0.84, 0.58),
    ),
    Step(
        "haemostasis",
        "sellar",
        "Haemostasis is achieved with haemostatic foam and bipolar coagulation",
        ("haemostatic_foam", "bipolar_forceps", "suction"),
        (0.45, 0.06, 0.06),
        (0.80, 0.25, 0.22),
    ),
    Step(
        "debris_clearance",
        "sellar",
        "Blood and tumour debris are cleared with suction and irrigation",
        ("suction", "irrigation_syringe"),
        (0.55, 0.40, 0.45),
        (0.86, 0.72, 0.78),
    ),
    Step(
        "synthetic_graft_placement",
        "closure",
        "A synthetic graft is placed over the sellar defact",
        ("cup_forceps", "freer_elevator"),
        (0.75, 0.78, 0.80),
        (0.96, 0.98, 0.99),
    ),
    Step(
        "fat_graft_placement",
        "closure",
        "An abdominal fat graft is placed into the sella",
        ("pituitary_rongeurs", "cup_forceps", "suction"),
        (0.80, 0.66, 0.25),
        (0.99, 0.92, 0.55),
    ),
    Step(
        "gasket_seal_construct",
        "closure",
        "A rigid buttress is wedged into the bony opening as a gasket seal",
        ("freer_elevator", "spatula_dissector"),
        (0.45, 0.55, 0.62),
        (0.80, 0.88, 0.92),
    ),
    Step(
        "dural_sealant",
        "closure",
        "Dural sealant is applied over the reconstruction",
        ("tissue_glue", "suction"),
        (0.40, 0.58, 0.42),
        (0.75, 0.90, 0.72),
    ),
    Step(
        "nasal_packing",
        "closure",
        "The nasal cavity is packed with absorbable packing",
        ("cup_forceps", "suction"),
        (0.78, 0.72, 0.62),
        (0.96, 0.93, 0.86),
    ),
)


@dataclass(frozen=True)
class Instrument:
    name: str
    activity: str  # suction, dissection, cutting, retraction, irrigation or coagulation
    colour: RGB
    radius: float  # shaft radius at the tip, px
    tip: str  # "round", "open", "blade", "jaws", "ball", "ring", "cup", "prongs" or "blob" (no shaft)


INSTRUMENTS = (
    Instrument("suction", "suction", (0.70, 0.74, 0.82), 5.0, "open"),
    Instrument("freer_elevator", "retraction", (0.84, 0.84, 0.86), 3.0, "blade"),
    Instrument("pituitary_rongeurs", "dissection", (0.45, 0.46, 0.50), 5.0, "jaws"),
    Instrument("spatula_dissector", "dissection", (0.78, 0.68, 0.42), 3.0, "blade"),
    Instrument("kerrisons", "cutting", (0.16, 0.16, 0.18), 6.0, "cup"),
    Instrument("cottle", "retraction", (0.92, 0.90, 0.80), 3.5, "blade"),
    Instrument("haemostatic_foam", "coagulation", (0.95, 0.84, 0.82), 15.0, "blob"),
    Instrument("micro_doppler", "dissection", (0.25, 0.40, 0.85), 4.0, "ball"),
    Instrument("nasal_cutting_forceps", "cutting", (0.60, 0.60, 0.64), 5.0, "jaws"),
    Instrument("stealth_pointer", "dissection", (0.40, 0.66, 0.46), 3.0, "ball"),
    Instrument("irrigation_syringe", "irrigation", (0.84, 0.92, 0.99), 6.0, "round"),
    Instrument("retractable_knife", "cutting", (0.74, 0.75, 0.80), 2.0, "round"),
    Instrument("dural_scissors", "cutting", (0.32, 0.33, 0.38), 3.5, "jaws"),
    Instrument("ring_curette", "dissection", (0.72, 0.72, 0.76), 3.0, "ring"),
    Instrument("cup_forceps", "dissection", (0.56, 0.50, 0.60), 4.0, "cup"),
    Instrument("bipolar_forceps", "coagulation", (0.20, 0.32, 0.72), 2.5, "prongs"),
    Instrument("tissue_glue", "coagulation", (0.92, 0.88, 0.50), 13.0, "blob"),
    Instrument("surgical_drill", "cutting", (0.86, 0.70, 0.28), 4.5, "ball"),
)
INSTRUMENT_BY_NAME = {instrument.name: instrument for instrument in INSTRUMENTS}
# Where the tip of an instrument at each position lies (before a little jitter).
TIP_POINTS = {
    "top-left": (62.0, 62.0),
    "top-right": (162.0, 62.0),
    "centre": (112.0, 112.0),
    "bottom-left": (62.0, 162.0),
    "bottom-right": (162.0, 162.0),
}

# Separate random streams, so that adding a draw to one never shifts another.
_VIDEO_STREAM, _FRAME_STREAM = 4101, 4102


def video_name(number: int) -> str:
    return f"video_{number:02d}"


def frame_name(second: int) -> str:
    return f"{second:05d}"


@dataclass(frozen=True)
class Placed:
    instrument: Instrument
    position: str


@dataclass(frozen=True)
class FramePlan:
    step: Step
    next_step: str
    next_phase: str
    instruments: tuple[Placed, ...]


def step_schedule(rng: np.random.Generator) -> list[int]:
    """Index into STEPS of every second: five or six steps in surgical order, each at least two seconds."""
    count = int(rng.integers(5, 7))
    chosen = np.sort(rng.choice(len(STEPS), size=count, replace=False))
    spare = SECONDS_PER_VIDEO - MIN_SECONDS_PER_STEP * count
    lengths = MIN_SECONDS_PER_STEP + rng.multinomial(spare, [1 / count] * count)
    return [int(step) for step, length in zip(chosen, lengths) for _ in range(length)]


def following(schedule: list[int], second: int) -> tuple[str, str]:
    """(next step, next phase) in the video: the step after the current one, the first later phase that differs."""
    current = STEPS[schedule[second]]
    later = [STEPS[index] for index in dict.fromkeys(schedule[second:]) if STEPS[index] is not current]
    next_step = later[0].name if later else END_OF_STEP
    next_phase = next((step.phase for step in later if step.phase != current.phase), END_OF_PHASE)
    return next_step, next_phase


def place_instruments(rng: np.random.Generator, step: Step, count: int) -> tuple[Placed, ...]:
    names = rng.choice(step.instruments, size=count, replace=False)
    positions = rng.choice(POSITIONS, size=count, replace=False)
    return tuple(Placed(INSTRUMENT_BY_NAME[str(name)], str(position)) for name, position in zip(names, positions))


def plan_frame(rng: np.random.Generator, schedule: list[int], second: int, without_instruments: bool) -> FramePlan:
    step = STEPS[schedule[second]]
    next_step, next_phase = following(schedule, second)
    count = 0 if without_instruments else int(rng.choice(3, p=[0.2, 0.45, 0.35]))
    return FramePlan(step, next_step, next_phase, place_instruments(rng, step, count))


def qa_lines(plan: FramePlan, no_visible_instrument: bool) -> list[str]:
    lines = [
        f"{QUESTION_PHASE}|{plan.step.phase}",
        f"{QUESTION_STEP}|{plan.step.name}",
        f"{QUESTION_NEXT_PHASE}|{plan.next_phase}",
        f"{QUESTION_NEXT_STEP}|{plan.next_step}",
        f"{QUESTION_OPERATION}|{plan.step.operation}",
    ]
    if no_visible_instrument:
        lines.append(f"{QUESTION_AT_POSITION.format(position='centre')}|{NO_VISIBLE_INSTRUMENT_ANSWER}")
    if plan.instruments:
        lines.append(f"{QUESTION_COUNT}|{COUNTS[len(plan.instruments)]}")
    for placed in plan.instruments:
        name = placed.instrument.name
        lines += [
            f"{QUESTION_AT_POSITION.format(position=placed.position)}|{name}",
            f"{QUESTION_TIP.format(tool=name)}|{placed.position}",
            f"{QUESTION_ACTIVITY.format(tool=name)}|{placed.instrument.activity}",
        ]
    return lines


# ---------------------------------------------------------------------------------------------
# Drawing.


def step_tissue(rng: np.random.Generator, step: Step) -> np.ndarray:
    """The step's tissue, larger than a frame by the camera's margin on every side."""
    size = WIDTH + 2 * CAMERA_MARGIN
    tissue = scene.tissue_texture(rng, size, size, step.dark, step.light, VESSEL, cell=40.0, vessel_strength=0.3)
    scene.blend(tissue, (1.0, 0.98, 0.96), 0.8 * scene.specular_glints(rng, size, size, cell=7.0, coverage=0.05))
    return tissue.astype(np.float32)


def rod(start: np.ndarray, end: np.ndarray, start_radius: float, end_radius: float) -> scene.ShadedPart:
    return scene.tapered_rod(HEIGHT, WIDTH, tuple(start), tuple(end), start_radius, end_radius)


def knob(centre: np.ndarray, axis: np.ndarray, radius: float) -> scene.ShadedPart:
    """A shaded ball (burr, probe head, punch): a rod too short to see, with its round end."""
    return rod(centre - axis * 0.1, centre, radius, radius)


def draw_instrument(rng: np.random.Generator, image: np.ndarray, placed: Placed) -> None:
    """A shaft from below the frame up to the tip at its position, ending in the instrument's own tip."""
    instrument = placed.instrument
    tip = np.asarray(TIP_POINTS[placed.position]) + rng.uniform(-8, 8, size=2)
    r = instrument.radius
    if instrument.tip == "blob":
        # Foam and glue lie on the tissue: a soft lump, no shaft.
        lump = scene.polygon_mask(HEIGHT, WIDTH, scene.blob_polygon(rng, tuple(tip), r, wobble=0.35))
        scene.cast_shadow(image, lump, (2, 3), 2, 0.35)
        shade = 0.8 + 0.3 * scene.box_blur(lump.astype(np.float32), 4)
        scene.paint(image, lump, np.asarray(instrument.colour, np.float32) * shade[..., None])
        return
    entry = np.array([tip[0] + (tip[0] - WIDTH / 2) * 0.8 + rng.uniform(-10, 10), HEIGHT + 60.0])
    axis = (tip - entry) / np.hypot(*(tip - entry))
    across = np.array([-axis[1], axis[0]])
    if instrument.tip == "prongs":
        parts = [rod(entry + across * side * 3 * r, tip + across * side * r, r * 1.2, r) for side in (-1, 1)]
    else:
        parts = [rod(entry, tip, r * 1.3, r)]
    if instrument.tip == "jaws":
        for side in (-1, 1):
            jaw_direction = scene.rotate(axis[None, :], side * 0.35)[0]
            parts.append(rod(tip, tip + jaw_direction * 4 * r, 0.6 * r, 0.3 * r))
    elif instrument.tip == "blade":
        parts.append(rod(tip, tip + axis * 3 * r, 1.8 * r, 1.2 * r))
    elif instrument.tip in ("ball", "cup"):
        parts.append(knob(tip, axis, 2.0 * r))
    whole = scene.union(parts)
    scene.cast_shadow(image, whole.mask, (4, 5), 3, 0.45)
    scene.paint_shaded(image, whole, instrument.colour, 0.55)
    if instrument.tip == "open":
        scene.paint(image, scene.disc_mask(HEIGHT, WIDTH, tuple(tip), 0.6 * r), (0.05, 0.05, 0.06))
    elif instrument.tip == "cup":
        scene.paint(image, scene.disc_mask(HEIGHT, WIDTH, tuple(tip), 1.1 * r), (0.08, 0.06, 0.06), 0.9)
    elif instrument.tip == "ring":
        loop = scene.arc_points(tuple(tip + axis * 2.2 * r), 2.2 * r, 0.0, 2 * np.pi)
        scene.paint(image, scene.polyline_mask(HEIGHT, WIDTH, loop, 3), instrument.colour)


def render_frame(
    rng: np.random.Generator, tissue: np.ndarray, plan: FramePlan, field_centre: scene.Point, blurred: bool
) -> np.ndarray:
    ox, oy = rng.integers(0, 2 * CAMERA_MARGIN + 1, size=2)
    image = tissue[oy : oy + HEIGHT, ox : ox + WIDTH].copy()
    for placed in plan.instruments:
        draw_instrument(rng, image, placed)
    light_centre = (WIDTH / 2 + rng.uniform(-20, 20), HEIGHT / 2 + rng.uniform(-20, 20))
    image *= scene.endoscope_lighting(HEIGHT, WIDTH, light_centre, 130.0, rng.uniform(0.9, 1.05))
    image[~scene.disc_mask(HEIGHT, WIDTH, field_centre, 132.0)] = 0.0
    if blurred:
        # The scope moved during the exposure: the frame the annotators skipped.
        image = np.stack([scene.box_blur(image[..., channel], 5) for channel in range(3)], axis=-1)
    return scene.to_uint8(image)


# ---------------------------------------------------------------------------------------------
# Files.


def write_video(root: Path, number: int, seed: int, advance: Advance) -> None:
    video_rng = np.random.default_rng([seed, _VIDEO_STREAM, number])
    schedule = step_schedule(video_rng)
    tissues = {index: step_tissue(video_rng, STEPS[index]) for index in dict.fromkeys(schedule)}
    field_centre = (WIDTH / 2 + video_rng.uniform(-4, 4), HEIGHT / 2 + video_rng.uniform(-4, 4))
    name = video_name(number)
    for second in range(SECONDS_PER_VIDEO):
        frame_rng = np.random.default_rng([seed, _FRAME_STREAM, number, second])
        no_visible = (number, second) == NO_VISIBLE_INSTRUMENT
        plan = plan_frame(frame_rng, schedule, second, without_instruments=no_visible)
        blurred = (number, second) in BLURRED_FRAMES
        image = render_frame(frame_rng, tissues[schedule[second]], plan, field_centre, blurred)
        write_png(root / "images" / name / f"{frame_name(second)}.png", image)
        if not blurred:
            text = "\n".join(qa_lines(plan, no_visible)) + "\n"
            if (number, second) == TRAILING_BLANK_LINE:
                text += "\n"
            write_bytes(root / "QA" / name / f"{frame_name(second)}.txt", text.encode("utf-8"))
        advance()


def write_pitvqa(root: Path, seed: int, progress: ProgressFn) -> Path:
    """Write images/ and QA/ for the demo videos into `root`; returns `root`."""
    root = Path(root)
    advance = progress("PitVQA demo", len(VIDEOS) * SECONDS_PER_VIDEO)
    for number in VIDEOS:
        write_video(root, number, seed, advance)
    return root
