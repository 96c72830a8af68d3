"""Demo FESS raw source: the export of a video annotation tool for endoscopic sinus surgery.

Layout (`<root>/`): `landmarks.txt` (the landmark vocabulary, one name a line, in id order) and
one folder per procedure, `fess01` .. `fess06`, holding the endoscope video `video.mp4` (or, for
fess06, its frames `frames/NNNNNN.png` with `frames.json` giving the fps) and two tables:

- `activities.csv` (`start,end,landmarks,current,next`): half-open intervals in seconds, one per
  stretch of stable anatomy; the visible landmarks joined by `|`; the current and the next
  anatomy as German sentences that a small grammar builds from the landmarks and their state;
- `report.csv` (`time,keyword,sentence`): the dictated operation report, one German sentence a
  row that contains its keyword, about one per activity, spoken shortly after it starts.

Six procedures of 24-30 s at 10 fps and 192x160, so the demo is written in seconds. Each follows
the order of a real FESS (inspection, medialisation of the middle turbinate, uncinectomy, ...,
tamponade; some steps are optional) and the step decides what is in the picture:

- every landmark has its own shape, colour and place (a bulge, a ridge, a dark opening or a red
  vessel) and only the landmarks of the current activity are drawn;
- what an earlier step opened looks opened (a raw red uncinate stump, a dark cell in the bulla,
  a widened ostium), as the description says;
- the step's instrument works on its target landmark (sickle knife, shaver, bipolar forceps ...),
  so the report keyword can be read from the image; blood streaks show the bleeding described;
- the camera drifts slowly (sub-pixel) and the light wobbles, so no two consecutive frames are
  equal.

The label skew follows the real data: middle meatus, middle concha and uncinate process are in
most activities, the ethmoidal arteries in few.

Deliberate quirks, so that a builder's reporting has something to report:

- the first report sentence comes 1-2 s after the video starts: earlier frames have no report;
- one or two gaps between activities per procedure (the scope is cleaned, its lens fogs) and a
  short tail after the last activity: frames that belong to no activity;
- one activity of fess03 sees nothing but blood: its `landmarks` field is empty;
- fess06 is delivered as PNG frames with `frames.json` instead of a video.

Videos are MPEG-4 Part 2 (FFmpeg's own `mpeg4` encoder, present in every build) in MP4, yuv420p
in BT.601 limited range, at the fixed quantiser 2 (about 38 dB PSNR), single-threaded and in
bit-exact mode (no version strings), from YUV planes computed here in integer arithmetic. All of
this is for byte-identical files from the same seed: libx264 (CRF 18, single-threaded) now and
then gave other bytes for the same frames here (3 times in some 400 encodes, cause not found),
while FFmpeg's native encoders are checked bit-exact by its own test suite.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from mtlbench.demo import scene
from mtlbench.noise_fields import fractal_noise
from mtlbench.outputs import write_bytes
from mtlbench.pngio import write_png
from mtlbench.progress import Advance, ProgressFn

WIDTH, HEIGHT = 192, 160
FPS = 10
PROCEDURES = tuple(f"fess{number:02d}" for number in range(1, 7))
PROCEDURE_AS_FRAMES = "fess06"
PROCEDURE_WITH_FLOODED_VIEW = "fess03"
DURATION_RANGE_S = (24.5, 29.5)
# The camera drifts this far (px) either way around the mean view the landmarks are placed in.
CAMERA_MARGIN = 6
ACTIVITY_COLUMNS = ("start", "end", "landmarks", "current", "next")
REPORT_COLUMNS = ("time", "keyword", "sentence")
LAST_NEXT = "Ende der Operation."
FLOODED_VIEW = "Keine Landmarke sichtbar, die Sicht ist durch Blut verlegt."
BLEEDING = ("Blutung gering.", "Blutung mäßig.", "Blutung stark.")
FLOODED = len(BLEEDING) - 1
# FFmpeg's own MPEG-4 Part 2 encoder at a fixed quantiser (no rate control): see the module docstring.
VIDEO_CODEC = "mpeg4"
VIDEO_QUANTISER = 2  # 1 (best) .. 31
FF_QP2LAMBDA = 118  # FFmpeg's factor from a quantiser to the lambda that global_quality takes

RGB = tuple[float, float, float]
MUCOSA = dict(dark=(0.62, 0.25, 0.24), light=(0.93, 0.62, 0.58), vessel=(0.55, 0.10, 0.12))
RAW_RED, CAVITY, BONE_RIM = (0.80, 0.16, 0.16), (0.14, 0.05, 0.06), (0.93, 0.87, 0.78)
BLOOD, FOG = (0.42, 0.02, 0.04), (0.80, 0.78, 0.76)

# Separate random streams, so that adding a draw to one never shifts another.
_PLAN_STREAM, _LOOK_STREAM, _WORLD_STREAM = 3101, 3102, 3103


@dataclass(frozen=True)
class Landmark:
    name: str
    german: str  # as the descriptions name it
    kind: str  # "bulge", "ridge", "opening" or "vessel"
    # Mean-view frame pixels: the centre (bulge, opening) or start, bend and end of the centre line.
    points: tuple[scene.Point, ...]
    size: float  # radius (bulge, opening) or half width (ridge, vessel)
    colour: RGB
    aspect: float = 1.0  # width / height of a bulge or opening

    @property
    def anchor(self) -> np.ndarray:
        """A point inside the landmark in the mean view: where instruments aim and checks look."""
        if len(self.points) == 1:
            return np.asarray(self.points[0], np.float64)
        start, bend, end = (np.asarray(point, np.float64) for point in self.points)
        return (start + 2 * bend + end) / 4  # the middle of the quadratic curve


# The vocabulary, in id order; placed so that no two overlap in the mean view.
LANDMARKS = (
    Landmark("nasal_septum", "Nasenscheidewand", "ridge", ((36, 34), (28, 80), (36, 126)), 9, (0.96, 0.70, 0.66)),
    Landmark("inferior_concha", "untere Nasenmuschel", "bulge", ((100, 140),), 11, (0.72, 0.30, 0.34), 2.2),
    Landmark("middle_concha", "mittlere Nasenmuschel", "bulge", ((70, 84),), 20, (0.97, 0.56, 0.44), 0.5),
    Landmark("middle_meatus", "mittlerer Nasengang", "opening", ((93, 90),), 18, (0.24, 0.07, 0.08), 0.32),
    Landmark(
        "uncinate_process", "Processus uncinatus", "ridge", ((110, 68), (124, 90), (110, 112)), 4.5, (0.94, 0.80, 0.62)
    ),
    Landmark("ethmoid_bulla", "Bulla ethmoidalis", "bulge", ((143, 89),), 13, (0.98, 0.62, 0.32)),
    Landmark("agger_nasi", "Agger nasi", "bulge", ((124, 36),), 10, (0.78, 0.46, 0.64)),
    Landmark("maxillary_ostium", "Kieferhöhlenostium", "opening", ((140, 119),), 6, (0.12, 0.10, 0.20), 1.4),
    Landmark("frontal_recess", "Recessus frontalis", "opening", ((100, 30),), 7, (0.14, 0.18, 0.10), 0.8),
    Landmark("basal_lamella", "Grundlamelle", "ridge", ((130, 64), (146, 56), (160, 64)), 3.5, (0.97, 0.92, 0.86)),
    Landmark("sphenoid_ostium", "Keilbeinhöhlenostium", "opening", ((58, 128),), 6, (0.22, 0.08, 0.24)),
    Landmark("skull_base", "Schädelbasis", "ridge", ((54, 22), (72, 12), (90, 17)), 5, (0.96, 0.91, 0.58)),
    Landmark("lamina_papyracea", "Lamina papyracea", "ridge", ((166, 48), (172, 70), (166, 92)), 5, (0.78, 0.83, 0.95)),
    Landmark(
        "anterior_ethmoidal_artery",
        "Arteria ethmoidalis anterior",
        "vessel",
        ((58, 40), (74, 30), (90, 42)),
        2.6,
        (0.86, 0.04, 0.10),
    ),
    Landmark(
        "posterior_ethmoidal_artery",
        "Arteria ethmoidalis posterior",
        "vessel",
        ((84, 60), (98, 48), (114, 54)),
        2.6,
        (0.50, 0.04, 0.32),
    ),
)
LANDMARK_NAMES = tuple(landmark.name for landmark in LANDMARKS)
LANDMARK_BY_NAME = {landmark.name: landmark for landmark in LANDMARKS}

# Landmark -> its sentence (before, after) the step that opens it; the skull base stays intact.
LANDMARK_STATES: dict[str, tuple[str, str]] = {
    "uncinate_process": ("Der Processus uncinatus ist noch nicht reseziert.", "Der Processus uncinatus ist reseziert."),
    "ethmoid_bulla": ("Die Bulla ethmoidalis ist geschlossen.", "Die Bulla ethmoidalis ist eröffnet."),
    "maxillary_ostium": ("Das Kieferhöhlenostium ist eng.", "Das Kieferhöhlenostium ist erweitert."),
    "frontal_recess": ("Der Recessus frontalis ist verlegt.", "Der Zugang zur Stirnhöhle ist frei."),
    "sphenoid_ostium": ("Das Keilbeinhöhlenostium ist verschlossen.", "Die Keilbeinhöhle ist eröffnet."),
    "skull_base": ("Die Schädelbasis ist intakt.", "Die Schädelbasis ist intakt."),
}
OPENED_BY = {
    "uncinate_process": "Uncinektomie",
    "ethmoid_bulla": "Bullaeröffnung",
    "maxillary_ostium": "Infundibulotomie",
    "frontal_recess": "Stirnhöhlendrainage",
    "sphenoid_ostium": "Sphenoidotomie",
}


@dataclass(frozen=True)
class Tool:
    colour: RGB
    radius: float
    target: str  # the landmark its tip works on
    prongs: int = 1  # bipolar forceps: two


@dataclass(frozen=True)
class Stage:
    """A step of the operation: what tends to be in view, what is said, what is in the surgeon's hand."""

    keyword: str
    odds: dict[str, float]  # landmark -> chance that it is in view
    sentences: tuple[str, ...]  # report sentences, each containing the keyword as a word
    tool: Tool | None
    optional: bool = False
    bleeding: int = 0  # index into BLEEDING


STAGES = (
    Stage(
        "Inspektion",
        {
            "nasal_septum": 0.9,
            "inferior_concha": 0.8,
            "middle_concha": 0.9,
            "middle_meatus": 0.7,
            "uncinate_process": 0.4,
        },
        (
            "Es erfolgt die endoskopische Inspektion der Nasenhaupthöhle.",
            "Bei der Inspektion zeigt sich eine ödematöse Schleimhaut.",
        ),
        None,
    ),
    Stage(
        "Medialisierung",
        {"nasal_septum": 0.5, "middle_concha": 1.0, "middle_meatus": 0.9, "uncinate_process": 0.8, "agger_nasi": 0.3},
        ("Vorsichtige Medialisierung der mittleren Muschel mit dem Freer-Elevatorium.",),
        Tool((0.80, 0.81, 0.84), 2.2, "middle_concha"),
        optional=True,
    ),
    Stage(
        "Uncinektomie",
        {
            "middle_concha": 0.8,
            "middle_meatus": 1.0,
            "uncinate_process": 1.0,
            "ethmoid_bulla": 0.5,
            "maxillary_ostium": 0.3,
        },
        (
            "Es erfolgt die Uncinektomie mit dem Sichelmesser.",
            "Die Uncinektomie wird mit der Rückbeißzange vervollständigt.",
        ),
        Tool((0.74, 0.75, 0.78), 1.5, "uncinate_process"),
    ),
    Stage(
        "Infundibulotomie",
        {
            "middle_concha": 0.6,
            "middle_meatus": 0.9,
            "uncinate_process": 0.6,
            "ethmoid_bulla": 0.4,
            "maxillary_ostium": 1.0,
        },
        (
            "Infundibulotomie und Darstellung des natürlichen Kieferhöhlenostiums.",
            "Nach der Infundibulotomie wird das Ostium mit der Stanze erweitert.",
        ),
        Tool((0.30, 0.31, 0.34), 3.2, "maxillary_ostium"),
    ),
    Stage(
        "Bullaeröffnung",
        {
            "middle_concha": 0.7,
            "middle_meatus": 0.8,
            "uncinate_process": 0.5,
            "ethmoid_bulla": 1.0,
            "basal_lamella": 0.4,
            "lamina_papyracea": 0.3,
        },
        ("Bullaeröffnung mit dem Shaver.", "Es folgt die Bullaeröffnung, der Inhalt wird abgesaugt."),
        Tool((0.40, 0.50, 0.70), 3.8, "ethmoid_bulla"),
    ),
    Stage(
        "Siebbeinausräumung",
        {
            "middle_concha": 0.5,
            "middle_meatus": 0.5,
            "ethmoid_bulla": 0.5,
            "basal_lamella": 0.9,
            "lamina_papyracea": 0.8,
            "skull_base": 0.6,
            "anterior_ethmoidal_artery": 0.2,
            "posterior_ethmoidal_artery": 0.15,
        },
        (
            "Siebbeinausräumung bis zur Grundlamelle unter Schonung der Lamina papyracea.",
            "Die Siebbeinausräumung erfolgt entlang der Schädelbasis.",
        ),
        Tool((0.64, 0.66, 0.70), 2.8, "basal_lamella"),
        bleeding=1,
    ),
    Stage(
        "Stirnhöhlendrainage",
        {
            "middle_concha": 0.4,
            "middle_meatus": 0.4,
            "agger_nasi": 0.9,
            "frontal_recess": 1.0,
            "skull_base": 0.5,
            "anterior_ethmoidal_artery": 0.2,
        },
        (
            "Anlage einer Stirnhöhlendrainage Typ Draf IIa.",
            "Die Stirnhöhlendrainage wird mit der gebogenen Kürette erweitert.",
        ),
        Tool((0.55, 0.66, 0.52), 2.4, "frontal_recess"),
        optional=True,
    ),
    Stage(
        "Sphenoidotomie",
        {
            "nasal_septum": 0.6,
            "middle_concha": 0.5,
            "sphenoid_ostium": 1.0,
            "skull_base": 0.5,
            "posterior_ethmoidal_artery": 0.2,
        },
        (
            "Sphenoidotomie über das natürliche Ostium.",
            "Nach der Sphenoidotomie ist die Keilbeinhöhle gut belüftet.",
        ),
        Tool((0.74, 0.62, 0.36), 3.4, "sphenoid_ostium"),
        optional=True,
    ),
    Stage(
        "Blutstillung",
        {
            "middle_concha": 0.6,
            "middle_meatus": 0.7,
            "uncinate_process": 0.4,
            "basal_lamella": 0.3,
            "anterior_ethmoidal_artery": 0.25,
            "posterior_ethmoidal_artery": 0.2,
        },
        (
            "Blutstillung mit der bipolaren Pinzette.",
            "Blutstillung durch Einlage adrenalingetränkter Watten, die Blutung steht.",
        ),
        Tool((0.20, 0.32, 0.74), 1.4, "middle_meatus", prongs=2),
        optional=True,
        bleeding=1,
    ),
    Stage(
        "Tamponade",
        {"nasal_septum": 0.8, "inferior_concha": 0.6, "middle_concha": 0.8, "middle_meatus": 0.8},
        (
            "Abschließend Tamponade der Nasenhaupthöhle mit Fingerlingen.",
            "Einlage einer resorbierbaren Tamponade, Ende des Eingriffs.",
        ),
        Tool((0.95, 0.94, 0.88), 5.5, "middle_meatus"),
    ),
)
FLOODED_STAGE = "Blutstillung"


# ---------------------------------------------------------------------------------------------
# What happens when: the activities and the report of one procedure.


@dataclass(frozen=True)
class Activity:
    start: float
    end: float
    stage: Stage
    landmarks: tuple[str, ...]  # in vocabulary order
    opened: frozenset[str]  # visible landmarks that an earlier step opened
    bleeding: int  # index into BLEEDING

    def description(self) -> str:
        """The German sentence of this anatomy: what is seen, the state of what was opened, the bleeding."""
        if not self.landmarks:
            return f"{FLOODED_VIEW} {BLEEDING[self.bleeding]}"
        names = [LANDMARK_BY_NAME[name].german for name in self.landmarks]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " und " + names[-1]
        states = [LANDMARK_STATES[name][name in self.opened] for name in self.landmarks if name in LANDMARK_STATES]
        return " ".join([f"Sichtbar: {listed}.", *states, BLEEDING[self.bleeding]])


@dataclass(frozen=True)
class ReportLine:
    time: float
    keyword: str
    sentence: str


@dataclass(frozen=True)
class Procedure:
    name: str
    activities: tuple[Activity, ...]
    report: tuple[ReportLine, ...]
    frame_count: int

    def activity_at(self, time: float) -> tuple[int, bool]:
        """Index of the activity shown at `time`, and whether `time` lies in it (after it: its scene, fogged)."""
        shown = max(index for index, activity in enumerate(self.activities) if activity.start <= time)
        return shown, time < self.activities[shown].end


def choose_stages(rng: np.random.Generator, flooded: bool) -> list[Stage]:
    chosen = []
    for stage in STAGES:
        wanted = rng.random() < 0.6  # drawn for every stage: the draws never depend on which are optional
        if not stage.optional or wanted or (flooded and stage.keyword == FLOODED_STAGE):
            chosen.append(stage)
    return chosen


def visible_landmarks(rng: np.random.Generator, stage: Stage) -> tuple[str, ...]:
    """Each landmark by its odds; never none, since only the flooded view shows nothing."""
    seen = {name for name, odds in stage.odds.items() if rng.random() < odds}
    if not seen:
        seen = {max(stage.odds, key=stage.odds.get)}
    return tuple(name for name in LANDMARK_NAMES if name in seen)


def timeline(rng: np.random.Generator, count: int) -> tuple[list[tuple[float, float]], float]:
    """(start, end) of `count` activities, with one or two gaps and a tail, and the total length, in seconds."""
    total = rng.uniform(*DURATION_RANGE_S)
    tail = rng.uniform(0.3, 0.9)
    gap_after = set(rng.choice(count - 1, size=int(rng.integers(1, 3)), replace=False).tolist())
    gaps = [rng.uniform(0.6, 1.4) if index in gap_after else 0.0 for index in range(count)]
    weights = rng.uniform(0.8, 1.2, size=count)
    lengths = weights / weights.sum() * (total - tail - sum(gaps))
    intervals, clock = [], 0.0
    for length, gap in zip(lengths, gaps):
        intervals.append((round(clock, 3), round(clock + length, 3)))
        clock += length + gap
    return intervals, total


def plan_procedure(rng: np.random.Generator, name: str) -> Procedure:
    flooded = name == PROCEDURE_WITH_FLOODED_VIEW
    stages = choose_stages(rng, flooded)
    intervals, total = timeline(rng, len(stages))
    activities, report, done = [], [], set()
    for (start, end), stage in zip(intervals, stages):
        if flooded and stage.keyword == FLOODED_STAGE:
            landmarks, bleeding = (), FLOODED
        else:
            landmarks = visible_landmarks(rng, stage)
            bleeding = min(stage.bleeding + int(rng.random() < 0.2), FLOODED - 1)
        opened = frozenset(landmark for landmark in landmarks if OPENED_BY.get(landmark) in done)
        activities.append(Activity(start, end, stage, landmarks, opened, bleeding))
        report += report_lines(rng, stage, start, end, first=not report)
        done.add(stage.keyword)
    return Procedure(name, tuple(activities), tuple(report), int(np.ceil(total * FPS)))


def report_lines(rng: np.random.Generator, stage: Stage, start: float, end: float, first: bool) -> list[ReportLine]:
    """One sentence soon after the activity starts (the very first 1-1.6 s in), a second in a long activity."""
    delay = rng.uniform(1.0, 1.6) if first else rng.uniform(0.2, 0.9)
    spoken = round(start + min(delay, 0.7 * (end - start)), 2)
    order = rng.permutation(len(stage.sentences))
    lines = [ReportLine(spoken, stage.keyword, stage.sentences[order[0]])]
    if len(order) > 1 and end - spoken > 2.5:
        later = round(spoken + rng.uniform(1.0, end - spoken - 0.5), 2)
        lines.append(ReportLine(later, stage.keyword, stage.sentences[order[1]]))
    return lines


# ---------------------------------------------------------------------------------------------
# The picture: a world the camera drifts over, repainted for each activity.


@dataclass(frozen=True)
class ProcedureLook:
    mucosa: np.ndarray  # float32, world-sized: the frame plus the camera's margin on every side (+1 px)
    surface: np.ndarray  # world-sized fine noise in [0, 1]: the texture of the landmarks
    outlines: dict[str, np.ndarray]  # landmark -> polygon in world coordinates
    anchors: dict[str, np.ndarray]  # landmark -> its anchor in world coordinates
    field_radius: float
    outside_field: np.ndarray  # bool (H, W): the dark corners beyond the scope's circular field
    camera: np.ndarray  # (frames, 2): the world offset (x, y) of each frame, sub-pixel
    light: np.ndarray  # (frames, 3): light centre x, y and gain of each frame
    tool_entry_angle: float  # instruments come in from the lower right


def smooth_wobble(rng: np.random.Generator, frame_count: int, periods_s: tuple[float, float]) -> np.ndarray:
    """(frames,) slow motion in [-1, 1]: two sines of random period and phase."""
    time = np.arange(frame_count) / FPS
    first, second = (rng.uniform(*periods_s) for _ in range(2))
    phases = rng.uniform(0, 2 * np.pi, size=2)
    return 0.6 * np.sin(2 * np.pi * time / first + phases[0]) + 0.4 * np.sin(2 * np.pi * time / second + phases[1])


def landmark_outline(rng: np.random.Generator, landmark: Landmark, shift: np.ndarray) -> np.ndarray:
    if landmark.kind in ("bulge", "opening"):
        centre = tuple(np.asarray(landmark.points[0]) + shift)
        return scene.blob_polygon(rng, centre, landmark.size, landmark.aspect, 0.0, wobble=0.12)
    start, bend, end = (tuple(np.asarray(point) + shift) for point in landmark.points)
    centreline = scene.quadratic_curve(start, bend, end)
    # Thickest in the middle, thinner towards both ends.
    taper = 0.55 + 0.45 * np.sin(np.linspace(0, np.pi, len(centreline)))
    return scene.thick_polyline_polygon(centreline, landmark.size * taper)


def make_look(rng: np.random.Generator, frame_count: int) -> ProcedureLook:
    world_h, world_w = HEIGHT + 2 * CAMERA_MARGIN + 1, WIDTH + 2 * CAMERA_MARGIN + 1
    mucosa = scene.tissue_texture(rng, world_h, world_w, cell=26.0, vessel_strength=0.35, **MUCOSA).astype(np.float32)
    scene.blend(mucosa, (1.0, 0.97, 0.95), 0.8 * scene.specular_glints(rng, world_h, world_w, cell=6.0, coverage=0.05))
    surface = fractal_noise(rng, world_h, world_w, 6.0, octaves=2)
    # Each patient's anatomy sits a little differently; every landmark a little more so.
    anatomy = CAMERA_MARGIN + rng.uniform(-3, 3, size=2)
    shifts = {landmark.name: anatomy + rng.uniform(-1.5, 1.5, size=2) for landmark in LANDMARKS}
    outlines = {landmark.name: landmark_outline(rng, landmark, shifts[landmark.name]) for landmark in LANDMARKS}
    field_centre = (WIDTH / 2 + rng.uniform(-2, 2), HEIGHT / 2 + rng.uniform(-2, 2))
    field_radius = rng.uniform(82, 86)
    camera = CAMERA_MARGIN * (1 + np.stack([smooth_wobble(rng, frame_count, (7, 18)) for _ in range(2)], axis=1))
    light = np.stack(
        [
            field_centre[0] + 14 * smooth_wobble(rng, frame_count, (3, 9)),
            field_centre[1] + 10 * smooth_wobble(rng, frame_count, (3, 9)),
            1.0 + 0.05 * smooth_wobble(rng, frame_count, (1, 4)),
        ],
        axis=1,
    )
    return ProcedureLook(
        mucosa=mucosa,
        surface=surface,
        outlines=outlines,
        anchors={landmark.name: landmark.anchor + shifts[landmark.name] for landmark in LANDMARKS},
        field_radius=field_radius,
        outside_field=~scene.disc_mask(HEIGHT, WIDTH, field_centre, field_radius),
        camera=camera,
        light=light,
        tool_entry_angle=rng.uniform(0.2, 0.4) * np.pi,
    )


def scaled(polygon: np.ndarray, factor: float) -> np.ndarray:
    centre = polygon.mean(axis=0)
    return centre + (polygon - centre) * factor


def paint_landmark(world: np.ndarray, look: ProcedureLook, landmark: Landmark, opened: bool) -> None:
    """Bulges and ridges are lit brighter inside (raised), openings darker inside (deep), vessels flat."""
    height, width = world.shape[:2]
    outline = look.outlines[landmark.name]
    if opened and landmark.kind == "opening":
        outline = scaled(outline, 1.5)
    mask = scene.polygon_mask(height, width, outline)
    inside = scene.box_blur(mask.astype(np.float32), 3)
    relief = {"bulge": 0.6 + 0.55 * inside, "ridge": 0.7 + 0.45 * inside, "opening": 1.0 - 0.7 * inside}
    shade = relief.get(landmark.kind, np.ones_like(inside)) * (0.82 + 0.36 * look.surface)
    scene.paint(world, mask, np.asarray(landmark.colour, np.float32) * shade[..., None])
    if not opened:
        return
    if landmark.kind == "bulge":
        cavity = scene.polygon_mask(height, width, scaled(outline, 0.5))
        scene.paint(world, cavity, np.asarray(CAVITY, np.float32) * (1.2 - 0.5 * inside)[..., None])
    elif landmark.kind == "ridge":
        scene.paint(world, mask, RAW_RED, 0.55)
    else:
        rim = scene.polyline_mask(height, width, np.concatenate([outline, outline[:1]]), 2)
        scene.paint(world, rim, BONE_RIM, 0.9)


def draw_blood(rng: np.random.Generator, world: np.ndarray, level: int) -> None:
    """Streaks running down the mucosa; a flooded view is blood nearly everywhere."""
    height, width = world.shape[:2]
    if level == FLOODED:
        pooled = 0.75 + 0.2 * fractal_noise(rng, height, width, 20.0, octaves=3)
        scene.blend(world, BLOOD, pooled)
        return
    for _ in range(int(rng.integers(2, 5))):
        top = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.1, 0.4) * height])
        bottom = top + np.array([rng.uniform(-20, 20), rng.uniform(40, 90)])
        bend = (top + bottom) / 2 + np.array([rng.uniform(-12, 12), 0.0])
        centreline = scene.quadratic_curve(tuple(top), tuple(bend), tuple(bottom))
        # Widest where the blood wells up, thinning as it runs down.
        half_widths = rng.uniform(1.8, 3.0) * np.linspace(1.0, 0.35, len(centreline))
        streak = scene.thick_polyline_polygon(centreline, half_widths)
        scene.paint(world, scene.polygon_mask(height, width, streak), BLOOD, 0.85)


def activity_world(rng: np.random.Generator, look: ProcedureLook, activity: Activity) -> np.ndarray:
    world = look.mucosa.copy()
    for name in activity.landmarks:
        paint_landmark(world, look, LANDMARK_BY_NAME[name], name in activity.opened)
    if activity.bleeding:
        draw_blood(rng, world, activity.bleeding)
    return world


def view_at(world: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The frame-sized window of `world` at a sub-pixel offset (bilinear), so the drift is smooth."""
    x0, y0 = int(offset[0]), int(offset[1])
    fx, fy = float(offset[0] - x0), float(offset[1] - y0)
    band = world[y0 : y0 + HEIGHT + 1]
    across = band[:, x0 : x0 + WIDTH] * np.float32(1 - fx) + band[:, x0 + 1 : x0 + 1 + WIDTH] * np.float32(fx)
    return across[:-1] * np.float32(1 - fy) + across[1:] * np.float32(fy)


def draw_tool(image: np.ndarray, look: ProcedureLook, tool: Tool, index: int) -> None:
    """The instrument's tip on its target landmark, moving a little, its shaft from the lower right."""
    time = index / FPS
    jitter = 3.0 * np.array([np.sin(2 * np.pi * time / 1.7), np.cos(2 * np.pi * time / 2.3)])
    tip = look.anchors[tool.target] - look.camera[index] + jitter
    axis = scene.direction(look.tool_entry_angle)
    across = np.array([-axis[1], axis[0]])
    # Prongs (of the bipolar forceps) spread a little towards the hand.
    offsets = [0.0] if tool.prongs == 1 else [-1.6 * tool.radius, 1.6 * tool.radius]
    rods = []
    for offset in offsets:
        prong_tip, prong_root = tip + across * offset, tip + across * offset * 2 + axis * 300
        rods.append(
            scene.tapered_rod(HEIGHT, WIDTH, tuple(prong_root), tuple(prong_tip), tool.radius * 1.2, tool.radius)
        )
    instrument = scene.union(rods)
    scene.cast_shadow(image, instrument.mask, (3, 4), 2, 0.45)
    scene.paint_shaded(image, instrument, tool.colour, 0.5)


def render_frame(look: ProcedureLook, world: np.ndarray, index: int, activity: Activity, fogged: bool) -> np.ndarray:
    image = view_at(world, look.camera[index])
    if activity.stage.tool is not None:
        draw_tool(image, look, activity.stage.tool, index)
    light_x, light_y, gain = look.light[index]
    image *= scene.endoscope_lighting(HEIGHT, WIDTH, (light_x, light_y), look.field_radius, float(gain))
    if fogged:
        scene.blend(image, FOG, np.full((HEIGHT, WIDTH), 0.6, np.float32))
    image[look.outside_field] = 0.0
    return scene.to_uint8(image)


def procedure_frames(procedure: Procedure, seed: int, number: int, advance: Advance) -> Iterator[np.ndarray]:
    """Every frame in order; frames outside an activity show the one before it through a fogged lens."""
    look = make_look(np.random.default_rng([seed, _LOOK_STREAM, number]), procedure.frame_count)
    world_rng = np.random.default_rng([seed, _WORLD_STREAM, number])
    worlds = [activity_world(world_rng, look, activity) for activity in procedure.activities]
    for index in range(procedure.frame_count):
        shown, inside = procedure.activity_at(index / FPS)
        yield render_frame(look, worlds[shown], index, procedure.activities[shown], fogged=not inside)
        advance()


# ---------------------------------------------------------------------------------------------
# Files.


def yuv420_frame(rgb: np.ndarray) -> av.VideoFrame:
    """BT.601 limited-range YUV 4:2:0 in integer arithmetic (chroma from 2x2 averages): exact everywhere."""
    r, g, b = (rgb[..., channel].astype(np.int32) for channel in range(3))
    luma = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    r2, g2, b2 = ((c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2] + 2) >> 2 for c in (r, g, b))
    blue_diff = ((-38 * r2 - 74 * g2 + 112 * b2 + 128) >> 8) + 128
    red_diff = ((112 * r2 - 94 * g2 - 18 * b2 + 128) >> 8) + 128
    planes = np.concatenate([luma.ravel(), blue_diff.ravel(), red_diff.ravel()]).astype(np.uint8)
    return av.VideoFrame.from_ndarray(planes.reshape(HEIGHT * 3 // 2, WIDTH), format="yuv420p")


def encode_video(frames: Iterator[np.ndarray]) -> bytes:
    """MP4 bytes of RGB frames at FPS: single-threaded, fixed quantiser, bit-exact mode, so the bytes never vary."""
    buffer = io.BytesIO()
    # bitexact: no library version strings in the container or the bitstream.
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(VIDEO_CODEC, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        context = stream.codec_context
        context.thread_count, context.thread_type = 1, "NONE"
        context.flags |= av.codec.context.Flags.qscale | av.codec.context.Flags.bitexact
        context.global_quality = VIDEO_QUANTISER * FF_QP2LAMBDA
        # SMPTE 170M (BT.601) everywhere, limited range: what yuv420_frame computes.
        context.colorspace = context.color_primaries = context.color_trc = 6
        context.color_range = 1
        for index, rgb in enumerate(frames):
            frame = yuv420_frame(rgb)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def csv_bytes(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def activity_rows(procedure: Procedure) -> list[tuple]:
    descriptions = [activity.description() for activity in procedure.activities]
    return [
        (f"{activity.start:.3f}", f"{activity.end:.3f}", "|".join(activity.landmarks), current, following)
        for activity, current, following in zip(procedure.activities, descriptions, [*descriptions[1:], LAST_NEXT])
    ]


def report_rows(procedure: Procedure) -> list[tuple]:
    return [(f"{line.time:.2f}", line.keyword, line.sentence) for line in procedure.report]


def write_fess(root: Path, seed: int, progress: ProgressFn) -> Path:
    """Write landmarks.txt and one folder per procedure into `root`; returns `root`."""
    root = Path(root)
    procedures = [
        plan_procedure(np.random.default_rng([seed, _PLAN_STREAM, number]), name)
        for number, name in enumerate(PROCEDURES, start=1)
    ]
    advance = progress("FESS demo", sum(procedure.frame_count for procedure in procedures))
    write_bytes(root / "landmarks.txt", ("\n".join(LANDMARK_NAMES) + "\n").encode("utf-8"))
    for number, procedure in enumerate(procedures, start=1):
        folder = root / procedure.name
        frames = procedure_frames(procedure, seed, number, advance)
        if procedure.name == PROCEDURE_AS_FRAMES:
            for index, frame in enumerate(frames):
                write_png(folder / "frames" / f"{index:06d}.png", frame)
            write_bytes(folder / "frames.json", (json.dumps({"fps": FPS}) + "\n").encode("utf-8"))
        else:
            write_bytes(folder / "video.mp4", encode_video(frames))
        write_bytes(folder / "activities.csv", csv_bytes(ACTIVITY_COLUMNS, activity_rows(procedure)))
        write_bytes(folder / "report.csv", csv_bytes(REPORT_COLUMNS, report_rows(procedure)))
    return root
