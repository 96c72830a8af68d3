"""Importing any data set in the EndoARSS release layout (see mtlbench/sources/endoarss_release.py).

Typical inputs: the EndoARSS authors' MTL folders, or a dataset exported by mtlbench and read back.

Class and activity names: explicit arguments win, then the marker file of an mtlbench export,
then the calling builder's defaults (MTLESD supplies the ESD order). The generic importer has no
defaults: without a marker it refuses to guess. Names that do not come from a marker get the
colours of a known taxonomy when they are exactly its names, otherwise a fixed palette.

Validation split: the release's training script has none and selects models on test, which a
benchmark must not copy. If `val/` exists it is used, and an mtlbench export (marker present) is
taken as it is (its exporter omits the folders of empty splits); otherwise val is carved from train:
files are grouped by sequence (file-name prefix before the last '_'); with 3 or more groups,
max(1, round(10%)) of the groups in `hash_order(groups, seed)` become val; with fewer groups,
10% of the files (at least 1, never all) in `hash_order(sample ids, seed)`. dataset.json records
which rule was used and what it chose.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions, endoarss_tasks, write_dataset
from mtlbench.dataset.manifest import SPLITS
from mtlbench.dataset.writer import DatasetSpec, FileImage, SampleJob, Skip
from mtlbench.endoarss_marker import MARKER_FILE, ExportMarker, read_marker
from mtlbench.errors import InputError
from mtlbench.sources.endoarss_release import ReleaseFile, ReleaseMask, scan_release
from mtlbench.splits import hash_order
from mtlbench.taxonomies import ENDOVIS18_CLASSES, ESD_CLASSES, IGNORE_INDEX, SegClass, normalise_name

IMPORTER_VERSION = "1.0.0"
VAL_FRACTION = 0.1
MIN_GROUPS_FOR_GROUP_CARVING = 3
KNOWN_TAXONOMIES = (ESD_CLASSES, ENDOVIS18_CLASSES)
# Golden-ratio hue steps keep neighbouring class ids far apart on the colour wheel.
_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


@dataclass(frozen=True)
class ReleaseDefaults:
    """Names a builder assumes for a release without a marker, and why (recorded in dataset.json)."""

    class_names: tuple[str, ...]
    class_note: str
    activity_names: tuple[str, ...]
    activity_note: str


@BUILDERS.register("endoarss-release")
def build_from_release(
    release: Path,
    out: Path,
    *,
    name: str,
    class_names: Sequence[str] | None,
    activity_names: Sequence[str] | None,
    seed: int = 0,
    options: BuildOptions = BuildOptions(),
) -> Path:
    """Import a release folder as dataset `name`; its version is the marker's, else 1.0.0."""
    marker = read_marker(release)
    return import_release(
        release,
        out,
        marker=marker,
        name=name,
        version=marker.version if marker else IMPORTER_VERSION,
        builder_version=IMPORTER_VERSION,
        class_names=class_names,
        activity_names=activity_names,
        defaults=None,
        seed=seed,
        options=options,
    )


def import_release(
    release: Path,
    out: Path,
    *,
    marker: ExportMarker | None,
    name: str,
    version: str,
    builder_version: str,
    class_names: Sequence[str] | None,
    activity_names: Sequence[str] | None,
    defaults: ReleaseDefaults | None,
    seed: int,
    options: BuildOptions,
) -> Path:
    """The import shared by the generic importer and the builders of specific data sets."""
    release = Path(release)
    scan = scan_release(release)
    if marker is None and not {"train", "test"} <= set(scan.folders):
        raise InputError(release, "not an EndoARSS release: needs train/ and test/ folders (val/ is optional)")
    classes, classes_from = _choose(
        release,
        "class names",
        explicit=None if class_names is None else coloured_classes(_checked_names(class_names, "class names")),
        from_marker=marker and marker.classes,
        from_defaults=defaults and coloured_classes(defaults.class_names),
        defaults_note=defaults and defaults.class_note,
    )
    activities, activities_from = _choose(
        release,
        "activity names",
        explicit=None if activity_names is None else _checked_names(activity_names, "activity names"),
        from_marker=marker and marker.activities,
        from_defaults=defaults and defaults.activity_names,
        defaults_note=defaults and defaults.activity_note,
    )
    _check_activity_folders(scan.files, len(activities))
    split_of_file, split_rule = assign_splits(scan.files, scan.folders, marker is not None, seed)
    jobs = [
        SampleJob(
            sample_id=file.sample_id,
            split=split_of_file[file.sample_id],
            sequence=file.sequence,
            frame=file.frame,
            image=FileImage(file.image),
            labels={"activity": file.activity_id},
            mask=ReleaseMask(file.mask, len(classes), zero_is_ignore=marker is not None),
        )
        for file in scan.files
    ]
    skips = [Skip("not a .png mask file (ignored, as by the release's loader)", item) for item in scan.ignored]
    spec = DatasetSpec(
        name=name,
        version=version,
        builder_version=builder_version,
        source=_describe_source(scan.files, len(scan.ignored), marker),
        tasks=endoarss_tasks(activities, classes),
        splits=SPLITS,
        build_parameters={
            "input_mode": "endoarss-release",
            "class_order": [cls.name for cls in classes],
            "class_names_from": classes_from,
            "activity_names_from": activities_from,
            "activity_rule": "activity folder number minus 1 (<split>/<n>/ holds activity n-1)",
            "mask_decoding": _mask_rule(marker),
            "sequence_rule": "file stem up to its last '_', frame the rest; a stem without '_' is both",
            "splits": split_rule,
            "seed": seed,
        },
        splits_from=f"{release} (its split folders)",
    )
    return write_dataset(spec, jobs, skips, out, options)


def _choose(release: Path, what: str, *, explicit, from_marker, from_defaults, defaults_note):
    """(value, where it came from): the explicit argument, else the export marker, else the builder's defaults."""
    for value, origin in (
        (explicit, "given explicitly"),
        (from_marker, f"read from {MARKER_FILE}"),
        (from_defaults, defaults_note),
    ):
        if value is not None:
            return value, origin
    raise InputError(release, f"no {MARKER_FILE} marker and no {what} given: the importer cannot guess them")


def _check_activity_folders(files: Sequence[ReleaseFile], num_activities: int) -> None:
    for file in files:
        if file.activity_id >= num_activities:
            folder = file.mask.parent.parent
            raise InputError(folder, f"activity folder {folder.name} but only {num_activities} activities are named")


def _checked_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(names)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise InputError(what, "must be a non-empty list of non-empty names")
    keys = [normalise_name(name) for name in names]
    duplicates = sorted({name for name, key in zip(names, keys) if keys.count(key) > 1})
    if duplicates:
        raise InputError(what, f"names must differ (ignoring case, spaces, '_' and '-'): {', '.join(duplicates)}")
    if len(names) > IGNORE_INDEX:
        raise InputError(what, f"at most {IGNORE_INDEX} names fit in an 8-bit mask")
    return names


def coloured_classes(names: Sequence[str]) -> tuple[SegClass, ...]:
    """Classes with the colours of the known taxonomy they spell, otherwise of a fixed palette."""
    keys = [normalise_name(name) for name in names]
    for taxonomy in KNOWN_TAXONOMIES:
        if keys == [normalise_name(cls.name) for cls in taxonomy]:
            return tuple(SegClass(i, name, cls.color) for i, (name, cls) in enumerate(zip(names, taxonomy)))
    return tuple(SegClass(i, name, palette_colour(i)) for i, name in enumerate(names))


def palette_colour(class_id: int) -> tuple[int, int, int]:
    """Black for class 0 (background by the release's convention), distinct bright hues after it."""
    if class_id == 0:
        return (0, 0, 0)
    hue = (class_id * _GOLDEN_RATIO_CONJUGATE) % 1.0
    return tuple(round(255 * channel) for channel in colorsys.hsv_to_rgb(hue, 0.8, 1.0))


def assign_splits(
    files: Sequence[ReleaseFile], folders: Sequence[str], exported: bool, seed: int
) -> tuple[dict[str, str], dict]:
    """Sample id -> split, and how each split was obtained (for build_parameters).

    An mtlbench export is never carved: its exporter leaves out the folders of empty splits, so
    a missing val/ there means the original val was empty, and carving would change the data.
    """
    rule = {"train": "release train/ folder", "val": "release val/ folder", "test": "release test/ folder"}
    if "val" in folders or exported:
        return {file.sample_id: file.folder for file in files}, rule
    train = [file for file in files if file.folder == "train"]
    carved, carving = carve_validation(train, seed)
    rule |= {"train": "release train/ folder, less the files carved for val", "val": carving}
    return {file.sample_id: "val" if file.sample_id in carved else file.folder for file in files}, rule


def carve_validation(train: Sequence[ReleaseFile], seed: int) -> tuple[set[str], dict]:
    """Sample ids of the train files that become val, and a record of the rule that chose them."""
    groups = sorted({file.sequence for file in train})
    record = {"source": "carved from release train/ (the release has no val/)", "fraction": VAL_FRACTION, "seed": seed}
    if len(groups) >= MIN_GROUPS_FOR_GROUP_CARVING:
        chosen = set(hash_order(groups, seed)[: max(1, round(VAL_FRACTION * len(groups)))])
        carved = {file.sample_id for file in train if file.sequence in chosen}
        record |= {
            "unit": "sequence (file-name prefix before the last '_')",
            "rule": "max(1, round(fraction * groups)) first groups in hash_order(groups, seed)",
            "sequences": sorted(chosen),
        }
    else:
        ids = [file.sample_id for file in train]
        count = min(len(ids) - 1, max(1, round(VAL_FRACTION * len(ids)))) if ids else 0
        carved = set(hash_order(ids, seed)[:count])
        record |= {
            "unit": f"file (fewer than {MIN_GROUPS_FOR_GROUP_CARVING} sequences in train)",
            "rule": "min(files - 1, max(1, round(fraction * files))) first sample ids in hash_order(ids, seed)",
        }
    return carved, record | {"files": len(carved)}


def _mask_rule(marker: ExportMarker | None) -> str:
    if marker is None:
        return "8-bit grey; raw 0 and 1 -> background 0, raw k >= 2 -> class k-1 (the release's loader)"
    return f"8-bit grey; raw 0 -> ignore {IGNORE_INDEX}, raw k >= 1 -> class k-1 (mtlbench export marker)"


def _describe_source(files: Sequence[ReleaseFile], ignored: int, marker: ExportMarker | None) -> dict:
    return {
        "description": "Folders in the EndoARSS release layout <split>/<activity>/{image,mask}/<name>.png"
        + (f", exported by mtlbench from {marker.dataset} {marker.version}" if marker else ""),
        "mask_files": {folder: sum(1 for file in files if file.folder == folder) for folder in SPLITS},
        "ignored_files": ignored,
        "export_marker": (
            {"dataset": marker.dataset, "version": marker.version, "fingerprint": marker.fingerprint} if marker else None
        ),
    }
