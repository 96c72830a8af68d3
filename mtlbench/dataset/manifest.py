"""Reading, validating and writing the two metadata files of a dataset folder.

The format is documented in docs/format-dataset.md; every reader goes through `read_dataset`,
which validates both files against each other and against the fingerprint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.taxonomies import IGNORE_INDEX, SegClass

FORMAT_NAME = "mtlbench-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = (
    "sample_id",
    "split",
    "sequence",
    "frame",
    "activity",
    "activity_id",
    "image",
    "mask",
    "width",
    "height",
    "image_sha256",
    "mask_sha256",
)
_SAMPLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def safe_id(text: str) -> str:
    """A filesystem-safe identifier: letters, digits, '.', '_' and '-' only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not cleaned:
        raise ValueError(f"cannot make an identifier from {text!r}")
    return cleaned


@dataclass(frozen=True)
class Sample:
    sample_id: str
    split: str
    sequence: str
    frame: str
    activity: str
    activity_id: int
    image: str
    mask: str
    width: int
    height: int
    image_sha256: str
    mask_sha256: str
    extra: dict[str, str] = field(default_factory=dict)

    def row(self) -> list[str]:
        core = [getattr(self, column) for column in MANIFEST_COLUMNS]
        return [str(value) for value in core] + list(self.extra.values())


@dataclass(frozen=True)
class DatasetCard:
    """A dataset folder's metadata, validated: dataset.json as `meta` plus the parsed manifest."""

    root: Path
    meta: dict
    classes: tuple[SegClass, ...]
    activities: tuple[str, ...]
    samples: tuple[Sample, ...]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def vocabulary_json(self) -> dict:
        return vocabulary_json(self.classes, self.activities)

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.meta["splits"])

    def split(self, name: str) -> tuple[Sample, ...]:
        if name not in self.meta["splits"]:
            raise InputError(self.root / "dataset.json", f"no split {name!r} (splits: {', '.join(self.meta['splits'])})")
        return tuple(sample for sample in self.samples if sample.split == name)


def manifest_text(samples: list[Sample] | tuple[Sample, ...], extra_columns: tuple[str, ...]) -> str:
    """samples.csv content: header, then rows in the given order, '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS + extra_columns)
    writer.writerows(sample.row() for sample in samples)
    return buffer.getvalue()


def fingerprint(samples: list[Sample] | tuple[Sample, ...], extra_columns: tuple[str, ...]) -> str:
    """sha256 of the manifest text with its rows sorted by sample_id (independent of row order)."""
    ordered = sorted(samples, key=lambda sample: sample.sample_id)
    return hashlib.sha256(manifest_text(ordered, extra_columns).encode("utf-8")).hexdigest()


def vocabulary_json(classes: tuple[SegClass, ...], activities: tuple[str, ...]) -> dict:
    """The `classes` and `activities` entries shared by dataset.json and the exports' metadata."""
    return {
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes],
        "activities": [{"id": i, "name": name} for i, name in enumerate(activities)],
    }


def parse_vocabulary(path: Path, data: dict) -> tuple[tuple[SegClass, ...], tuple[str, ...]]:
    """Validate and parse `classes` and `activities` as written by `vocabulary_json`."""
    for key in ("classes", "activities"):
        entries = data.get(key)
        if not isinstance(entries, list) or not entries or not all(isinstance(item, dict) for item in entries):
            raise InputError(path, f"{key} must be a non-empty list of objects")
        if [item.get("id") for item in entries] != list(range(len(entries))):
            raise InputError(path, f"{key} must be a non-empty list with ids 0..n-1 in order")
        if not all(isinstance(item.get("name"), str) and item["name"] for item in entries):
            raise InputError(path, f"every entry of {key} needs a name")
    if len(data["classes"]) > IGNORE_INDEX:
        raise InputError(path, f"at most {IGNORE_INDEX} classes fit in an 8-bit mask")
    for item in data["classes"]:
        color = item.get("color")
        if not (isinstance(color, list) and len(color) == 3 and all(type(c) is int and 0 <= c <= 255 for c in color)):
            raise InputError(path, f"class {item['name']!r} needs a color [r, g, b]")
    classes = tuple(SegClass(item["id"], item["name"], tuple(item["color"])) for item in data["classes"])
    return classes, tuple(item["name"] for item in data["activities"])


def read_dataset(root: str | Path) -> DatasetCard:
    """Read and validate a dataset folder's dataset.json and samples.csv."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    meta = _read_meta(root / "dataset.json")
    classes, activities = parse_vocabulary(root / "dataset.json", meta)
    samples, extra_columns = _read_manifest(root / "samples.csv", meta, activities)
    if fingerprint(samples, extra_columns) != meta["fingerprint"]:
        raise InputError(root / "samples.csv", "content does not match the fingerprint in dataset.json")
    return DatasetCard(root=root, meta=meta, classes=classes, activities=activities, samples=samples)


def _read_meta(path: Path) -> dict:
    meta = read_json(path, missing="missing: not an mtlbench dataset folder")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(path, f"not an mtlbench dataset description (\"format\" must be {FORMAT_NAME!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(path, f"format_version {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
    for key, kind in (("name", str), ("version", str), ("splits", dict), ("fingerprint", str)):
        if not isinstance(meta.get(key), kind):
            raise InputError(path, f"field {key!r} missing or not a {kind.__name__}")
    if meta.get("ignore_index") != IGNORE_INDEX:
        raise InputError(path, f"ignore_index must be {IGNORE_INDEX}")
    parse_vocabulary(path, meta)
    unknown_splits = set(meta["splits"]) - set(SPLITS)
    if unknown_splits:
        raise InputError(path, f"unknown split names {sorted(unknown_splits)} (allowed: {', '.join(SPLITS)})")
    return meta


def _read_manifest(path: Path, meta: dict, activities: tuple[str, ...]) -> tuple[tuple[Sample, ...], tuple[str, ...]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "missing") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0][: len(MANIFEST_COLUMNS)]) != MANIFEST_COLUMNS:
        raise InputError(path, f"the first columns must be exactly: {','.join(MANIFEST_COLUMNS)}")
    extra_columns = tuple(rows[0][len(MANIFEST_COLUMNS) :])
    samples: list[Sample] = []
    seen: set[str] = set()
    for line_number, row in enumerate(rows[1:], start=2):
        sample = _parse_row(path, line_number, row, len(rows[0]), extra_columns, meta, activities)
        if sample.sample_id in seen:
            raise InputError(path, f"line {line_number}: duplicate sample_id {sample.sample_id!r}")
        seen.add(sample.sample_id)
        samples.append(sample)
    counts = {name: sum(1 for s in samples if s.split == name) for name in meta["splits"]}
    declared = {name: info.get("samples") for name, info in meta["splits"].items()}
    if counts != declared:
        raise InputError(path, f"samples per split {counts} differ from dataset.json {declared}")
    return tuple(samples), extra_columns


def _parse_row(path, line_number, row, width, extra_columns, meta, activities) -> Sample:
    where = f"line {line_number}"
    if len(row) != width:
        raise InputError(path, f"{where}: expected {width} fields, found {len(row)}")
    values = dict(zip(MANIFEST_COLUMNS, row))
    if not _SAMPLE_ID.match(values["sample_id"]):
        raise InputError(path, f"{where}: sample_id {values['sample_id']!r} is not filesystem-safe")
    if values["split"] not in meta["splits"]:
        raise InputError(path, f"{where}: split {values['split']!r} is not declared in dataset.json")
    numbers = {}
    for column in ("activity_id", "width", "height"):
        try:
            numbers[column] = int(values[column])
        except ValueError:
            raise InputError(path, f"{where}: {column} {values[column]!r} is not an integer") from None
    if not 0 <= numbers["activity_id"] < len(activities) or activities[numbers["activity_id"]] != values["activity"]:
        raise InputError(path, f"{where}: activity {values['activity']!r} / id {values['activity_id']} not in the vocabulary")
    if numbers["width"] <= 0 or numbers["height"] <= 0:
        raise InputError(path, f"{where}: width and height must be positive")
    for column in ("image", "mask"):
        relative = PurePosixPath(values[column])
        if relative.is_absolute() or ".." in relative.parts or not values[column]:
            raise InputError(path, f"{where}: {column} path {values[column]!r} must be relative and inside the folder")
    for column in ("image_sha256", "mask_sha256"):
        if not _SHA256.match(values[column]):
            raise InputError(path, f"{where}: {column} is not a sha256 hex digest")
    return Sample(
        sample_id=values["sample_id"],
        split=values["split"],
        sequence=values["sequence"],
        frame=values["frame"],
        activity=values["activity"],
        activity_id=numbers["activity_id"],
        image=values["image"],
        mask=values["mask"],
        width=numbers["width"],
        height=numbers["height"],
        image_sha256=values["image_sha256"],
        mask_sha256=values["mask_sha256"],
        extra=dict(zip(extra_columns, row[len(MANIFEST_COLUMNS) :])),
    )
