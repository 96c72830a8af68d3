"""EndoVis 2018 Robotic Scene Segmentation training release: sequence discovery and labels.

Labels are colour-coded PNGs (RGB, RGBA or palette). They are decoded by exact RGB colour:
each sequence's labels.json says which colours that sequence uses, and the colour (never the
name, which varies between copies) maps to the standard class id and, through the dataset's class
scheme (mtlbench/taxonomies.py), to the id the dataset stores. Any other colour becomes
IGNORE_INDEX and is counted.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench.dataset.writer import MaskDecoding
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.pngio import open_image
from mtlbench.taxonomies import ENDOVIS18_CLASSES, IGNORE_INDEX, ClassScheme

_SEQUENCE_DIR = re.compile(r"^seq_(\d+)$")
_COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "RGBX"}
STANDARD_ID_BY_COLOUR = {cls.color: cls.id for cls in ENDOVIS18_CLASSES}


RELEASE_CONTENT = ("left_frames", "labels", "labels.json")


def find_sequence_dirs(root: Path, holding: tuple[str, ...]) -> dict[int, Path]:
    """`seq_N` folders directly in `root` or one level down (the unpacked release folders).

    Only folders holding one of the `holding` entries count, because the VQA annotations may be
    unpacked into the same tree as the release, with `seq_N` folders of their own.
    """
    if not root.is_dir():
        raise InputError(root, "folder not found")
    found: dict[int, Path] = {}
    for candidate in sorted(list(root.glob("seq_*")) + list(root.glob("*/seq_*"))):
        match = _SEQUENCE_DIR.match(candidate.name)
        if not (match and candidate.is_dir() and any((candidate / entry).exists() for entry in holding)):
            continue
        number = int(match.group(1))
        if number in found:
            raise InputError(candidate, f"sequence {number} appears twice (also {found[number]})")
        found[number] = candidate
    return found


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint32 with 0xRRGGBB, so a colour is one integer."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


ColourTable = tuple[tuple[int, int], ...]  # (packed colour, class id of the scheme), sorted


def read_colour_table(path: Path, scheme: ClassScheme) -> ColourTable:
    """Packed colour -> the scheme's class id, for the colours listed in a labels.json."""
    entries = read_json(path, missing="labels.json missing")
    if not isinstance(entries, list):
        raise InputError(path, "expected a JSON list of {name, color, classid} objects")
    table = {}
    for index, entry in enumerate(entries):
        color = entry.get("color") if isinstance(entry, dict) else None
        if not (isinstance(color, list) and len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)):
            raise InputError(path, f"entry {index} has no valid \"color\": [r, g, b]")
        standard_id = STANDARD_ID_BY_COLOUR.get(tuple(color))
        if standard_id is not None:
            r, g, b = color
            table[(r << 16) | (g << 8) | b] = scheme.ids[standard_id]
    return tuple(sorted(table.items()))


@functools.lru_cache(maxsize=4)
def _lookup_table(table: ColourTable) -> np.ndarray:
    lut = np.full(1 << 24, IGNORE_INDEX, dtype=np.uint8)
    for packed, class_id in table:
        lut[packed] = class_id
    return lut


def colour_name(packed: int) -> str:
    return f"#{packed:06x}"


@dataclass(frozen=True)
class ColourLabel:
    """A colour-coded label PNG, decoded with its sequence's colour table."""

    path: Path
    colours: ColourTable

    def describe(self) -> str:
        return str(self.path)

    def decode(self, height: int, width: int) -> MaskDecoding:
        image = open_image(self.path)
        if image.mode not in _COLOUR_MODES:
            raise InputError(self.path, f"label PNG has mode {image.mode}; expected colour-coded RGB, RGBA or palette")
        packed = pack_rgb(np.asarray(image.convert("RGB")))
        mask = _lookup_table(self.colours)[packed]
        unmapped = mask == IGNORE_INDEX
        if not unmapped.any():
            return MaskDecoding(mask)
        colours, counts = np.unique(packed[unmapped], return_counts=True)
        return MaskDecoding(mask, {colour_name(int(c)): int(n) for c, n in zip(colours, counts)})
