"""`mtlbench-export.json`: the marker that mtlbench's endoarss export writes at the root of a folder in
the EndoARSS release layout, and that the release importer reads back.

It carries the dataset's identity and vocabularies and says how ignored pixels were encoded
(raw 0), so that re-importing an export gives back the original masks exactly. This module owns
the format, its reader and its writer, so that the exporter and the importer depend on it and
not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtlbench.dataset.manifest import DatasetCard, parse_vocabulary
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json, write_json
from mtlbench.taxonomies import SegClass

MARKER_FILE = "mtlbench-export.json"
MARKER_FORMAT = "mtlbench-endoarss-export"
MARKER_FORMAT_VERSION = 1
# The only encoding mtlbench writes: raw = class id + 1, ignored pixels raw 0.
MARKER_IGNORE_RAW_VALUE = 0


@dataclass(frozen=True)
class ExportMarker:
    dataset: str
    version: str
    fingerprint: str
    classes: tuple[SegClass, ...]
    activities: tuple[str, ...]


def write_marker(card: DatasetCard, folder: Path) -> None:
    write_json(
        Path(folder) / MARKER_FILE,
        {
            "format": MARKER_FORMAT,
            "format_version": MARKER_FORMAT_VERSION,
            "dataset": card.name,
            "version": card.meta["version"],
            "fingerprint": card.fingerprint,
            **card.vocabulary_json(),
            "ignore_raw_value": MARKER_IGNORE_RAW_VALUE,
        },
    )


def read_marker(root: Path) -> ExportMarker | None:
    """The export marker at the release root, or None for a release without one."""
    path = Path(root) / MARKER_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
        raise InputError(path, f'not an mtlbench export marker ("format" must be {MARKER_FORMAT!r})')
    if data.get("format_version") != MARKER_FORMAT_VERSION:
        found = data.get("format_version")
        raise InputError(path, f"format_version {found!r} is not supported (expected {MARKER_FORMAT_VERSION})")
    if data.get("ignore_raw_value") != MARKER_IGNORE_RAW_VALUE:
        raise InputError(path, f"ignore_raw_value must be {MARKER_IGNORE_RAW_VALUE}")
    for key in ("dataset", "version", "fingerprint"):
        if not isinstance(data.get(key), str):
            raise InputError(path, f"field {key!r} missing or not a string")
    classes, activities = parse_vocabulary(path, data)
    return ExportMarker(
        dataset=data["dataset"],
        version=data["version"],
        fingerprint=data["fingerprint"],
        classes=classes,
        activities=activities,
    )
