"""Class and activity vocabularies of the source data sets (see docs/datasets.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mtlbench.registry import Registry

IGNORE_INDEX = 255


@dataclass(frozen=True)
class SegClass:
    id: int
    name: str
    color: tuple[int, int, int]


# EndoVis 2018 scene segmentation: standard ids and label colours.
ENDOVIS18_CLASSES: tuple[SegClass, ...] = (
    SegClass(0, "background-tissue", (0, 0, 0)),
    SegClass(1, "instrument-shaft", (0, 255, 0)),
    SegClass(2, "instrument-clasper", (0, 255, 255)),
    SegClass(3, "instrument-wrist", (125, 255, 12)),
    SegClass(4, "kidney-parenchyma", (255, 55, 0)),
    SegClass(5, "covered-kidney", (24, 55, 125)),
    SegClass(6, "thread", (187, 155, 25)),
    SegClass(7, "clamps", (0, 255, 125)),
    SegClass(8, "suturing-needle", (255, 255, 125)),
    SegClass(9, "suction-instrument", (123, 15, 175)),
    SegClass(10, "small-intestine", (124, 155, 5)),
    SegClass(11, "ultrasound-probe", (12, 255, 141)),
)


@dataclass(frozen=True)
class ClassScheme:
    """The classes a dataset gets from a source's standard classes: standard class k becomes
    class `ids[k]` of `classes`."""

    name: str
    description: str
    classes: tuple[SegClass, ...]
    ids: tuple[int, ...]


def merged_scheme(name: str, description: str, standard: Sequence[SegClass], parts: Sequence[str], merged: str) -> ClassScheme:
    """`standard` with the classes named in `parts` made one class `merged`, at the place and with
    the colour of the first of them; the ids stay contiguous and in the standard order."""
    classes: list[SegClass] = []
    ids: list[int] = []
    merged_id = None
    for cls in standard:
        if cls.name in parts and merged_id is not None:
            ids.append(merged_id)
            continue
        if cls.name in parts:
            merged_id = len(classes)
        ids.append(len(classes))
        classes.append(SegClass(len(classes), merged if cls.name in parts else cls.name, cls.color))
    return ClassScheme(name, description, tuple(classes), tuple(ids))


# MTLEndovis's class schemes (`--classes`). "release" is inferred from the EndoARSS release's loader
# code, not documented by its authors: the loader asserts mask values <= 9 after subtracting 1, so
# at most 10 classes, and merging the three instrument parts is what makes the 12 fit.
ENDOVIS18_INSTRUMENT_PARTS = ("instrument-shaft", "instrument-clasper", "instrument-wrist")
ENDOVIS18_CLASS_SCHEMES: Registry[ClassScheme] = Registry("class scheme")
for _scheme in (
    ClassScheme("endovis18", "the 12 EndoVis 2018 classes", ENDOVIS18_CLASSES, tuple(cls.id for cls in ENDOVIS18_CLASSES)),
    merged_scheme(
        "release",
        "10 classes: instrument-shaft, -clasper and -wrist merged into one 'instrument' class, "
        "the most the EndoARSS release's loader accepts",
        ENDOVIS18_CLASSES,
        ENDOVIS18_INSTRUMENT_PARTS,
        "instrument",
    ),
):
    ENDOVIS18_CLASS_SCHEMES.add(_scheme.name, _scheme)

# EndoVis-18-VQA per-instrument actions in their standard order; the order breaks ties.
ENDOVIS18_ACTIONS: tuple[str, ...] = (
    "Idle",
    "Grasping",
    "Retraction",
    "Tissue_Manipulation",
    "Tool_Manipulation",
    "Cutting",
    "Cauterization",
    "Suction",
    "Looping",
    "Suturing",
    "Clipping",
    "Staple",
    "Ultrasound_Sensing",
)

# The instruments of the EndoVis 2018 annotations, as EndoVis-18-VQA names them.
ENDOVIS18_TOOLS: tuple[str, ...] = (
    "bipolar_forceps",
    "prograsp_forceps",
    "large_needle_driver",
    "monopolar_curved_scissors",
    "ultrasound_probe",
    "suction",
    "clip_applier",
    "stapler",
    "maryland_dissector",
    "spatulated_monopolar_cautery",
)

# ESD (MTLESD): the colours are ours (the source has none); chosen to be distinct in previews.
ESD_CLASSES: tuple[SegClass, ...] = (
    SegClass(0, "background", (0, 0, 0)),
    SegClass(1, "Marking Area", (255, 210, 0)),
    SegClass(2, "Electric Knife", (0, 200, 255)),
    SegClass(3, "Incision Area", (255, 80, 80)),
    SegClass(4, "Mucosal Flaps", (180, 90, 255)),
    SegClass(5, "FPCW Forceps", (0, 255, 120)),
    SegClass(6, "FPCW Knife", (255, 140, 0)),
)

ESD_ACTIVITIES: tuple[str, ...] = ("Marking", "Circumferential Incision", "Submucosal Dissection")


def normalise_name(name: str) -> str:
    """Case-, space-, hyphen- and underscore-insensitive key for matching names."""
    return "".join(ch for ch in name.lower() if ch not in " _-")


@dataclass(frozen=True)
class NameLookup:
    """Ids of a vocabulary's names, matched exactly, else by normalise_name (only keys no two names share)."""

    exact: dict[str, int]
    normalised: dict[str, int]

    @classmethod
    def of(cls, names: Sequence[str]) -> NameLookup:
        keys = [normalise_name(name) for name in names]
        return cls(
            exact={name: i for i, name in enumerate(names)},
            normalised={key: i for i, key in enumerate(keys) if keys.count(key) == 1},
        )

    def find(self, value: str) -> int | None:
        found = self.exact.get(value)
        return found if found is not None else self.normalised.get(normalise_name(value))
