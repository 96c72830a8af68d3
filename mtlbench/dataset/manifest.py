"""Reading and validating the two metadata files of a dataset folder, and the manifest's layout.

The format is documented in docs/format-dataset.md; every reader goes through `read_dataset`,
which validates both files against each other and against the fingerprint. Format 2 declares
the dataset's tasks (mtlbench/tasks/); format 1 (an activity and a segmentation task, before
task types existed) is still read, as the same two tasks, so its datasets and results stay valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.tasks import MaskFile, Task, task_from_json
from mtlbench.tasks.classification import ACTIVITY_TASK, ClassificationTask
from mtlbench.tasks.segmentation import SegmentationTask, parse_classes
from mtlbench.taxonomies import IGNORE_INDEX, SegClass

FORMAT_NAME = "mtlbench-dataset"
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
SPLITS = ("train", "val", "test")
# Every sample's columns, before the columns of its tasks (in the declared task order) and extras.
CORE_COLUMNS = ("sample_id", "split", "sequence", "frame", "image", "width", "height", "image_sha256")
# Format 1 had fixed columns: an activity task and a segmentation task, interleaved with the core.
FORMAT_1_COLUMNS = (
    "sample_id", "split", "sequence", "frame", "activity", "activity_id", "image", "mask", "width", "height",
    "image_sha256", "mask_sha256",
)
FORMAT_1_SUBMISSION_FILE = "activities.csv"
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
    image: str
    width: int
    height: int
    image_sha256: str
    labels: dict[str, Any]  # task name -> its label (ClassLabel, LabelSet, MaskFile or TextLabel)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def mask_file(self) -> MaskFile | None:
        """The label of the dataset's segmentation task, if it has one."""
        return next((label for label in self.labels.values() if isinstance(label, MaskFile)), None)

    @property
    def mask(self) -> str | None:
        return None if self.mask_file is None else self.mask_file.path

    @property
    def mask_sha256(self) -> str | None:
        return None if self.mask_file is None else self.mask_file.sha256

    @property
    def activity_id(self) -> int:
        return self.labels[ACTIVITY_TASK].id

    @property
    def activity(self) -> str:
        return self.labels[ACTIVITY_TASK].name


@dataclass(frozen=True)
class DatasetCard:
    """A dataset folder's metadata, validated: dataset.json as `meta`, its tasks, the parsed manifest,
    and the statistics of each split (format 1's are read into format 2's shape)."""

    root: Path
    meta: dict
    tasks: tuple[Task, ...]
    samples: tuple[Sample, ...]
    statistics: dict[str, dict]  # split -> {"samples", "sequences", "tasks": {task: its statistics}}

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.statistics)

    def split(self, name: str) -> tuple[Sample, ...]:
        if name not in self.statistics:
            raise InputError(self.root / "dataset.json", f"no split {name!r} (splits: {', '.join(self.statistics)})")
        return tuple(sample for sample in self.samples if sample.split == name)

    def task(self, name: str) -> Task:
        found = next((task for task in self.tasks if task.name == name), None)
        if found is None:
            raise InputError(self.root / "dataset.json", f"no task {name!r} (tasks: {', '.join(t.name for t in self.tasks)})")
        return found

    @property
    def segmentation(self) -> SegmentationTask | None:
        return next((task for task in self.tasks if isinstance(task, SegmentationTask)), None)

    @property
    def activity_task(self) -> ClassificationTask | None:
        """The classification task named ACTIVITY_TASK, if the dataset has one."""
        return next((t for t in self.tasks if t.name == ACTIVITY_TASK and isinstance(t, ClassificationTask)), None)

    # What the EndoARSS track needs: an activity task and a segmentation task.
    @property
    def classes(self) -> tuple[SegClass, ...]:
        if self.segmentation is None:
            raise InputError(self.root / "dataset.json", "has no segmentation task")
        return self.segmentation.classes

    @property
    def activities(self) -> tuple[str, ...]:
        if self.activity_task is None:
            raise InputError(self.root / "dataset.json", f"has no classification task {ACTIVITY_TASK!r}")
        return self.activity_task.classes

    def vocabulary_json(self) -> dict:
        return vocabulary_json(self.classes, self.activities)


def manifest_columns(tasks: Sequence[Task], extra_columns: Sequence[str]) -> tuple[str, ...]:
    return CORE_COLUMNS + tuple(column for task in tasks for column in task.columns()) + tuple(extra_columns)


def sample_row(sample: Sample, tasks: Sequence[Task]) -> list[str]:
    core = [sample.sample_id, sample.split, sample.sequence, sample.frame, sample.image, str(sample.width), str(sample.height), sample.image_sha256]
    return core + [cell for task in tasks for cell in task.cells(sample.labels[task.name])] + list(sample.extra.values())


def manifest_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """samples.csv content: header, then the rows in the given order, '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def fingerprint(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """sha256 of the manifest text with its rows sorted by sample_id (independent of row order)."""
    return hashlib.sha256(manifest_text(header, sorted(rows, key=lambda row: row[0])).encode("utf-8")).hexdigest()


def vocabulary_json(classes: tuple[SegClass, ...], activities: tuple[str, ...]) -> dict:
    """The `classes` and `activities` entries of format 1 and of the EndoARSS export marker."""
    return {
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes],
        "activities": [{"id": i, "name": name} for i, name in enumerate(activities)],
    }


def parse_vocabulary(path: Path, data: dict) -> tuple[tuple[SegClass, ...], tuple[str, ...]]:
    """Validate and parse `classes` and `activities` as written by `vocabulary_json`."""
    activities = data.get("activities")
    if not isinstance(activities, list) or not activities or not all(isinstance(item, dict) for item in activities):
        raise InputError(path, "activities must be a non-empty list of objects")
    if [item.get("id") for item in activities] != list(range(len(activities))):
        raise InputError(path, "activities must be a non-empty list with ids 0..n-1 in order")
    if not all(isinstance(item.get("name"), str) and item["name"] for item in activities):
        raise InputError(path, "every entry of activities needs a name")
    classes = data.get("classes")
    if not isinstance(classes, list):
        raise InputError(path, "classes must be a non-empty list of objects")
    return parse_classes(classes, path), tuple(item["name"] for item in activities)


def read_dataset(root: str | Path) -> DatasetCard:
    """Read and validate a dataset folder's dataset.json and samples.csv."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    path = root / "dataset.json"
    meta = _read_meta(path)
    if meta["format_version"] == 1:
        tasks, columns, statistics = _format_1(meta, path)
    else:
        tasks = _tasks(meta, path)
        statistics = _statistics(meta, tasks, path)
        columns = manifest_columns(tasks, ())
    samples, header, rows = _read_manifest(root / "samples.csv", tasks, columns, statistics)
    if fingerprint(header, rows) != meta["fingerprint"]:
        raise InputError(root / "samples.csv", "content does not match the fingerprint in dataset.json")
    return DatasetCard(root=root, meta=meta, tasks=tasks, samples=samples, statistics=statistics)


def _read_meta(path: Path) -> dict:
    meta = read_json(path, missing="missing: not an mtlbench dataset folder")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(path, f"not an mtlbench dataset description (\"format\" must be {FORMAT_NAME!r})")
    if meta.get("format_version") not in READABLE_FORMAT_VERSIONS:
        supported = " or ".join(map(str, READABLE_FORMAT_VERSIONS))
        raise InputError(path, f"format_version {meta.get('format_version')!r} is not supported (expected {supported})")
    for key, kind in (("name", str), ("version", str), ("splits", dict), ("fingerprint", str)):
        if not isinstance(meta.get(key), kind):
            raise InputError(path, f"field {key!r} missing or not a {kind.__name__}")
    if meta.get("ignore_index") != IGNORE_INDEX:
        raise InputError(path, f"ignore_index must be {IGNORE_INDEX}")
    unknown_splits = set(meta["splits"]) - set(SPLITS)
    if unknown_splits:
        raise InputError(path, f"unknown split names {sorted(unknown_splits)} (allowed: {', '.join(SPLITS)})")
    return meta


def _tasks(meta: dict, path: Path) -> tuple[Task, ...]:
    entries = meta.get("tasks")
    if not isinstance(entries, list) or not entries:
        raise InputError(path, "tasks must be a non-empty list of task declarations")
    tasks = tuple(task_from_json(entry, path) for entry in entries)
    names = [task.name for task in tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(path, f"task names occur twice: {', '.join(repeated)}")
    if sum(isinstance(task, SegmentationTask) for task in tasks) > 1:
        raise InputError(path, "a dataset has at most one segmentation task")
    columns = manifest_columns(tasks, ())
    clashing = sorted({column for column in columns if columns.count(column) > 1})
    if clashing:
        raise InputError(path, f"task columns clash in samples.csv: {', '.join(clashing)}")
    files = [task.submission_name for task in tasks]
    shared = sorted({name for name in files if files.count(name) > 1})
    if shared:
        raise InputError(path, f"tasks share the submission file {shared[0]}: each task needs its own")
    return tasks


def _statistics(meta: dict, tasks: tuple[Task, ...], path: Path) -> dict[str, dict]:
    for split, info in meta["splits"].items():
        if not isinstance(info, dict) or not isinstance(info.get("samples"), int) or not isinstance(info.get("tasks"), dict):
            raise InputError(path, f"splits.{split} needs samples and tasks")
        for task in tasks:
            found = info["tasks"].get(task.name)
            if not isinstance(found, dict) or any(key not in found for key in task.statistics_keys):
                raise InputError(path, f"splits.{split}.tasks.{task.name} needs {', '.join(task.statistics_keys)}")
    return meta["splits"]


def _format_1(meta: dict, path: Path) -> tuple[tuple[Task, ...], tuple[str, ...], dict[str, dict]]:
    """Format 1 as format 2: its activity task, its segmentation task, its split statistics."""
    classes, activities = parse_vocabulary(path, meta)
    tasks = (
        ClassificationTask(ACTIVITY_TASK, activities, FORMAT_1_SUBMISSION_FILE, path),
        SegmentationTask("segmentation", classes, path),
    )
    statistics = {
        split: {
            "samples": info.get("samples"),
            "sequences": info.get("sequences", []),
            "tasks": {
                "activity": {"counts": info.get("activity_counts", {})},
                "segmentation": {"pixel_counts": info.get("pixel_counts", {}), "ignored_pixels": info.get("ignored_pixels", 0)},
            },
        }
        for split, info in meta["splits"].items()
    }
    return tasks, FORMAT_1_COLUMNS, statistics


def _read_manifest(
    path: Path, tasks: tuple[Task, ...], columns: tuple[str, ...], statistics: dict[str, dict]
) -> tuple[tuple[Sample, ...], list[str], list[list[str]]]:
    """The samples, and the header and rows as read (the fingerprint is computed from them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "missing") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0][: len(columns)]) != columns:
        raise InputError(path, f"the first columns must be exactly: {','.join(columns)}")
    header = rows[0]
    extra_columns = tuple(header[len(columns) :])
    samples: list[Sample] = []
    seen: set[str] = set()
    for line_number, row in enumerate(rows[1:], start=2):
        where = f"{path}: line {line_number}"
        if len(row) != len(header):
            raise InputError(path, f"line {line_number}: expected {len(header)} fields, found {len(row)}")
        sample = _parse_row(where, dict(zip(header, row)), tasks, columns, extra_columns, statistics)
        if sample.sample_id in seen:
            raise InputError(path, f"line {line_number}: duplicate sample_id {sample.sample_id!r}")
        seen.add(sample.sample_id)
        samples.append(sample)
    counts = {name: sum(1 for s in samples if s.split == name) for name in statistics}
    declared = {name: info.get("samples") for name, info in statistics.items()}
    if counts != declared:
        raise InputError(path, f"samples per split {counts} differ from dataset.json {declared}")
    return tuple(samples), header, rows[1:]


def _parse_row(where: str, values: dict[str, str], tasks, columns, extra_columns, statistics) -> Sample:
    if not _SAMPLE_ID.match(values["sample_id"]):
        raise InputError(where, f"sample_id {values['sample_id']!r} is not filesystem-safe")
    if values["split"] not in statistics:
        raise InputError(where, f"split {values['split']!r} is not declared in dataset.json")
    numbers = {}
    for column in ("width", "height"):
        try:
            numbers[column] = int(values[column])
        except ValueError:
            raise InputError(where, f"{column} {values[column]!r} is not an integer") from None
        if numbers[column] <= 0:
            raise InputError(where, "width and height must be positive")
    relative = PurePosixPath(values["image"])
    if not values["image"] or relative.is_absolute() or ".." in relative.parts:
        raise InputError(where, f"image path {values['image']!r} must be relative and inside the folder")
    if not _SHA256.match(values["image_sha256"]):
        raise InputError(where, "image_sha256 is not a sha256 hex digest")
    labels = {task.name: task.parse([values[column] for column in task.columns()], where) for task in tasks}
    return Sample(
        sample_id=values["sample_id"],
        split=values["split"],
        sequence=values["sequence"],
        frame=values["frame"],
        image=values["image"],
        width=numbers["width"],
        height=numbers["height"],
        image_sha256=values["image_sha256"],
        labels=labels,
        extra={column: values[column] for column in extra_columns},
    )
