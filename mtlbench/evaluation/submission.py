"""Reading and validating a submission: a predictions folder, or a .zip of one.

The format and every rule enforced here are documented in docs/format-submission.md; the text
of `mtlbench evaluate --format` is `expected_format`, so the two cannot drift apart. Everything
but the pixels of the masks is checked here, before any scoring starts; the masks' mode, size
and values are checked while they are decoded (mtlbench.evaluation.streaming).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.tasks import TASKS
from mtlbench.taxonomies import IGNORE_INDEX, normalise_name

ACTIVITIES_FILE = "activities.csv"
MASKS_FOLDER = "masks"
META_FILE = "submission.json"
MASK_SUFFIX = ".png"
SCORE_PREFIX = "score_"
SCORE_SUM_TOLERANCE = 1e-3
# A zip's directory is read whole: a mask per frame of the largest split stays far below this.
MAX_ZIP_ENTRIES = 500_000
# Bounds on what a zip entry may declare, per file read (a zip bomb is refused before extraction);
# masks get mask_bytes(width, height) and activities.csv a header plus activities_row_bytes per row.
MAX_META_BYTES = 8 * 2**20
ACTIVITIES_HEADER_BYTES = 2**16
# Finder's "Compress" adds resource forks under this folder; they are skipped, never extracted.
MACOS_METADATA_FOLDER = "__MACOSX"
MAX_LISTED = 10
MAX_LISTED_ACTIVITIES = 20
FORMAT_EXAMPLE_IDS = 5
_DECIMAL = re.compile(r"[0-9]+")
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Submission:
    root: Path  # folder holding the files (inside a temporary folder for a zip)
    tasks: tuple[str, ...]  # subset of TASKS, in that order
    predicted_activity: dict[str, int] | None  # sample_id -> activity id
    scores: dict[str, np.ndarray] | None  # sample_id -> (A,) float64 probabilities
    mask_paths: dict[str, Path] | None  # sample_id -> PNG path, for sample ids of the split that have one
    missing: dict[str, tuple[str, ...]]  # task -> sample ids without a prediction; only tasks missing some
    meta: dict  # submission.json content, {} if absent


def score_column(activity: str) -> str:
    return f"{SCORE_PREFIX}{activity}"


@contextlib.contextmanager
def open_submission(
    path: Path, card: DatasetCard, split: str, *, allow_missing: bool = False, ignore_fingerprint: bool = False
) -> Iterator[Submission]:
    """Validate a predictions folder or zip against one split of `card` and yield its content.

    From a zip, only what is read is extracted, into a temporary folder that exists only inside
    the `with` block.
    """
    path = Path(path)
    samples = _split_samples(card, split)
    if path.is_dir():
        yield _read_folder(path, card, split, samples, allow_missing, ignore_fingerprint)
    elif path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="mtlbench-submission-") as scratch:
            root = _extract_zip(path, Path(scratch), card, split, samples)
            yield _read_folder(root, card, split, samples, allow_missing, ignore_fingerprint)
    elif path.exists():
        raise InputError(path, "a submission is a folder or a .zip file")
    else:
        raise InputError(path, "not found")


def _split_samples(card: DatasetCard, split: str) -> tuple[Sample, ...]:
    samples = card.split(split)
    if not samples:
        raise InputError(card.root / "dataset.json", f"split {split!r} has no samples to evaluate")
    return samples


# --- zip ----------------------------------------------------------------------------------------


def _extract_zip(path: Path, scratch: Path, card: DatasetCard, split: str, samples: tuple[Sample, ...]) -> Path:
    """Check every entry, extract only the files the reader will read into `scratch`, return it.

    Everything is decided from the zip's directory before a byte is extracted: unsafe or
    duplicate entries refuse the whole zip; entries the reader never reads (other files at the
    root, __MACOSX) are skipped; masks/ may hold only <sample_id>.png of the split; and each
    extracted entry must declare at most what its file can need for this split (zipfile stops
    every entry at its declared size, so the bound holds for what is written).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [info for info in archive.infolist() if _entry_parts(info)[:1] != (MACOS_METADATA_FOLDER,)]
            _check_zip_entries(path, entries)
            prefix = _zip_prefix(path, entries)
            for info, relative in _entries_to_extract(path, entries, prefix, card, split, samples):
                _extract_entry(path, archive, info, scratch.joinpath(*relative))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(path, f"not a readable zip file ({exc})") from None
    return scratch


def _entry_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    return PurePosixPath(info.filename).parts


def _check_zip_entries(path: Path, entries: list[zipfile.ZipInfo]) -> None:
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InputError(path, f"{len(entries)} entries exceed the limit of {MAX_ZIP_ENTRIES}")
    seen: set[tuple[str, ...]] = set()
    for info in entries:
        problem = _unsafe_entry(info)
        if problem:
            raise InputError(path, f"entry {info.filename!r}: {problem}; nothing was extracted")
        if _entry_parts(info) in seen:
            raise InputError(path, f"entry {info.filename!r} occurs twice; nothing was extracted")
        seen.add(_entry_parts(info))


def _unsafe_entry(info: zipfile.ZipInfo) -> str | None:
    """Why an entry could write outside the extraction folder or is not a plain file, if it is."""
    name = info.filename
    if name.startswith(("/", "\\")):
        return "absolute path"
    if _DRIVE_LETTER.match(name):
        return "path with a drive letter"
    if ".." in re.split(r"[/\\]", name):
        return "path with a '..' component"
    if "\\" in name:
        return "backslash in the path (zip paths use '/')"
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        return "symbolic link"
    # Zips made on Windows carry no Unix mode (type 0): the name alone says file or folder.
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file or folder"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def _zip_prefix(path: Path, entries: list[zipfile.ZipInfo]) -> tuple[str, ...]:
    """() when the submission files are at the zip's root, else (folder,) of its one top-level folder."""
    top = sorted({_entry_parts(info)[0] for info in entries if _entry_parts(info)})
    if any(name in (ACTIVITIES_FILE, MASKS_FOLDER, META_FILE) for name in top):
        return ()
    if len(top) == 1 and any(len(_entry_parts(info)) > 1 or info.is_dir() for info in entries):
        return (top[0],)
    found = ", ".join(top[:MAX_LISTED]) or "nothing"
    raise InputError(
        path,
        f"expected {ACTIVITIES_FILE} and/or {MASKS_FOLDER}/ at the root or inside one top-level folder (found: {found})",
    )


def _entries_to_extract(
    path: Path, entries: list[zipfile.ZipInfo], prefix: tuple[str, ...], card: DatasetCard, split: str, samples: tuple[Sample, ...]
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """(entry, path relative to the submission root) of each entry the reader reads, checked as above."""
    sizes = {sample.sample_id: (sample.width, sample.height) for sample in samples}
    budgets = {
        (ACTIVITIES_FILE,): ("activities file", ACTIVITIES_HEADER_BYTES + len(samples) * activities_row_bytes(len(card.activities))),
        (META_FILE,): ("submission.json", MAX_META_BYTES),
    }
    split_of = {sample.sample_id: sample.split for sample in card.samples}
    wanted, mask_entries = [], {}
    for info in entries:
        parts = _entry_parts(info)
        if parts[: len(prefix)] != prefix or len(parts) == len(prefix):
            continue
        relative = parts[len(prefix) :]
        if relative in budgets:
            wanted.append((info, relative))
        elif relative[0] == MASKS_FOLDER:
            if len(relative) == 1 and not info.is_dir():
                raise InputError(path / "/".join(parts), "must be a folder of <sample_id>.png masks")
            if len(relative) == 1:
                wanted.append((info, relative))
            elif len(relative) > 2 or info.is_dir():
                mask_entries[relative[1]] = "dir"
            else:
                mask_entries.setdefault(relative[1], "file")
                wanted.append((info, relative))
    unexpected = [
        f"{name} ({problem})"
        for name, kind in sorted(mask_entries.items())
        if (problem := _mask_name_problem(name, kind, card, split, split_of))
    ]
    if unexpected:
        raise InputError(path / "/".join(prefix + (MASKS_FOLDER,)), _unexpected_entries(unexpected))
    for info, relative in wanted:
        if info.is_dir():
            continue
        if relative[0] == MASKS_FOLDER:
            width, height = sizes[relative[1][: -len(MASK_SUFFIX)]]
            what, budget = f"{width}x{height} mask", mask_bytes(width, height)
        else:
            what, budget = budgets[relative]
        if info.file_size > budget:
            raise InputError(
                path, f"entry {info.filename!r} declares {info.file_size} bytes, more than a {what} can need ({budget}); nothing was extracted"
            )
    return wanted


def activities_row_bytes(activities: int) -> int:
    """A generous bound on one row of activities.csv: id and name, and a float per activity."""
    return 512 + 32 * activities


def mask_bytes(width: int, height: int) -> int:
    """A generous bound on an 8-bit PNG of width x height, even stored without compression."""
    return 2 * width * height + 2**20


def _extract_entry(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    try:
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "xb") as sink:
            shutil.copyfileobj(source, sink)
    except (NotImplementedError, RuntimeError, OSError) as exc:
        raise InputError(path, f"entry {info.filename!r} cannot be extracted ({exc})") from None


# --- the folder ---------------------------------------------------------------------------------


def _read_folder(
    root: Path,
    card: DatasetCard,
    split: str,
    samples: tuple[Sample, ...],
    allow_missing: bool,
    ignore_fingerprint: bool,
) -> Submission:
    meta = _read_meta(root / META_FILE, card, split, ignore_fingerprint)
    split_of = {sample.sample_id: sample.split for sample in card.samples}
    where = {"activity": root / ACTIVITIES_FILE, "segmentation": root / MASKS_FOLDER}
    for path in where.values():
        _refuse_symlink(path)
    tasks = tuple(task for task in TASKS if where[task].exists())
    if not tasks:
        raise InputError(
            root,
            f"no predictions: expected {ACTIVITIES_FILE} (activity task) and/or {MASKS_FOLDER}/ (segmentation task)",
        )
    predicted_activity = scores = mask_paths = None
    if "activity" in tasks:
        predicted_activity, scores = _read_activities(where["activity"], card, split, split_of)
    if "segmentation" in tasks:
        mask_paths = _find_masks(where["segmentation"], card, split, split_of)
    missing = {}
    for task, predicted in (("activity", predicted_activity), ("segmentation", mask_paths)):
        absent = tuple(
            sample.sample_id for sample in samples if predicted is not None and sample.sample_id not in predicted
        )
        if absent and not allow_missing:
            raise InputError(
                where[task],
                f"{len(absent)} of {len(samples)} predictions missing: {_listing(absent)} (--allow-missing scores them as wrong)",
            )
        if absent:
            missing[task] = absent
    return Submission(root, tasks, predicted_activity, scores, mask_paths, missing, meta)


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise InputError(path, "symbolic links are not accepted in a submission")


def _listing(items) -> str:
    items = list(items)
    shown = ", ".join(items[:MAX_LISTED])
    return shown if len(items) <= MAX_LISTED else f"{shown}, ... ({len(items)} in all)"


def _where_else(sample_id: str, card: DatasetCard, split: str, split_of: dict[str, str]) -> str | None:
    """Why a sample id is not one of the split's, or None if it is."""
    other = split_of.get(sample_id)
    if other is None:
        return f"not a sample of dataset {card.name!r}"
    if other != split:
        return f"a sample of split {other!r}, not {split!r}"
    return None


# --- submission.json ----------------------------------------------------------------------------

_META_TYPES = {
    "method": (str,),
    "dataset_fingerprint": (str,),
    "split": (str,),
    "seed": (int, type(None)),
    "parameters": (dict,),
    "parameter_count": (int,),
}


def _read_meta(path: Path, card: DatasetCard, split: str, ignore_fingerprint: bool) -> dict:
    _refuse_symlink(path)
    if not path.exists():
        return {}
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise InputError(path, "must hold a JSON object")
    for key, kinds in _META_TYPES.items():
        value = meta.get(key)
        if key in meta and (isinstance(value, bool) or not isinstance(value, kinds)):
            expected = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
            raise InputError(path, f"{key!r} must be {expected}, found {json.dumps(value)}")
    if meta.get("parameter_count", 0) < 0:
        raise InputError(path, "'parameter_count' must not be negative")
    claimed = meta.get("dataset_fingerprint")
    if claimed is not None and claimed != card.fingerprint and not ignore_fingerprint:
        raise InputError(
            path,
            f"dataset_fingerprint {claimed} differs from {card.name}'s {card.fingerprint} "
            "(made for another dataset version? --ignore-fingerprint evaluates anyway)",
        )
    if "split" in meta and meta["split"] != split:
        raise InputError(path, f"made for split {meta['split']!r}, but split {split!r} is evaluated")
    return meta


# --- activities.csv -----------------------------------------------------------------------------


def _read_activities(path: Path, card: DatasetCard, split: str, split_of: dict[str, str]):
    """{sample_id: activity id} and, if the file has score columns, {sample_id: (A,) scores}."""
    if not path.is_file():
        raise InputError(path, "must be a file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip() for cell in next(reader, [])]
        columns = _parse_header(path, header, card.activities)
        lookup = _ActivityLookup.of(card.activities)
        predicted: dict[str, int] = {}
        scores: dict[str, np.ndarray] = {}
        first_line: dict[str, int] = {}
        for row in reader:
            if not row:
                continue  # blank lines, e.g. at the end of a hand-written file
            line = reader.line_num
            row = [cell.strip() for cell in row]
            if len(row) != len(header):
                raise InputError(path, f"line {line}: expected {len(header)} fields, found {len(row)}")
            sample_id = row[columns["sample_id"]]
            problem = _where_else(sample_id, card, split, split_of)
            if problem:
                raise InputError(path, f"line {line}: sample_id {sample_id!r} is {problem}")
            if sample_id in first_line:
                raise InputError(
                    path, f"line {line}: duplicate sample_id {sample_id!r} (first on line {first_line[sample_id]})"
                )
            first_line[sample_id] = line
            predicted[sample_id] = _parse_activity(path, line, row[columns["activity"]], lookup, card.activities)
            if columns["scores"]:
                scores[sample_id] = _parse_scores(path, line, [row[i] for i in columns["scores"]], card.activities)
    except csv.Error as exc:
        raise InputError(path, f"line {reader.line_num}: not valid CSV ({exc})") from None
    return predicted, (scores if columns["scores"] else None)


def _parse_header(path: Path, header: list[str], activities: tuple[str, ...]) -> dict:
    """Positions of sample_id, activity and the score columns (in vocabulary order, or none)."""
    if not header:
        raise InputError(path, "empty: expected the header sample_id,activity")
    absent = [column for column in ("sample_id", "activity") if column not in header]
    if absent:
        raise InputError(path, f"header lacks the column(s) {', '.join(absent)} (found: {','.join(header)})")
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise InputError(path, f"header repeats the column(s) {', '.join(repeated)}")
    expected = [score_column(name) for name in activities]
    others = [column for column in header if column not in ("sample_id", "activity")]
    unknown = [column for column in others if column not in expected]
    if unknown:
        hint = " (an unnamed column: a pandas index? write with index=False)" if "" in unknown else ""
        raise InputError(
            path,
            f"unknown column(s) {', '.join(map(repr, unknown))}{hint}: "
            f"score columns are score_<activity name>, e.g. {expected[0]}",
        )
    if others and len(others) != len(expected):
        lacking = [column for column in expected if column not in others]
        raise InputError(path, f"give a score column for every activity or none; lacking: {_listing(lacking)}")
    return {
        "sample_id": header.index("sample_id"),
        "activity": header.index("activity"),
        "scores": [header.index(column) for column in expected] if others else [],
    }


@dataclass(frozen=True)
class _ActivityLookup:
    exact: dict[str, int]
    normalised: dict[str, int]  # only keys that no two activities share

    @classmethod
    def of(cls, activities: tuple[str, ...]) -> _ActivityLookup:
        keys = [normalise_name(name) for name in activities]
        return cls(
            exact={name: i for i, name in enumerate(activities)},
            normalised={key: i for i, key in enumerate(keys) if keys.count(key) == 1},
        )

    def find(self, value: str) -> int | None:
        found = self.exact.get(value)
        return found if found is not None else self.normalised.get(normalise_name(value))


def _parse_activity(path: Path, line: int, value: str, lookup: _ActivityLookup, activities: tuple[str, ...]) -> int:
    found = lookup.find(value)
    if found is not None:
        return found
    if _DECIMAL.fullmatch(value) and int(value) < len(activities):
        return int(value)
    vocabulary = (
        ", ".join(f"{i} {name}" for i, name in enumerate(activities))
        if len(activities) <= MAX_LISTED_ACTIVITIES
        else f"{len(activities)} activities, see mtlbench evaluate --format"
    )
    raise InputError(path, f"line {line}: activity {value!r} is not in the vocabulary ({vocabulary})")


def _parse_scores(path: Path, line: int, cells: list[str], activities: tuple[str, ...]) -> np.ndarray:
    values = []
    for name, cell in zip(activities, cells):
        try:
            value = float(cell)
        except ValueError:
            raise InputError(path, f"line {line}: {score_column(name)} {cell!r} is not a number") from None
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(path, f"line {line}: {score_column(name)} {cell!r} is not a probability in [0, 1]")
        values.append(value)
    scores = np.array(values, dtype=np.float64)
    total = float(scores.sum())
    if abs(total - 1.0) > SCORE_SUM_TOLERANCE:
        raise InputError(path, f"line {line}: scores sum to {total:.6g}, not 1 (tolerance {SCORE_SUM_TOLERANCE})")
    return scores


# --- masks/ -------------------------------------------------------------------------------------


def _find_masks(folder: Path, card: DatasetCard, split: str, split_of: dict[str, str]) -> dict[str, Path]:
    """{sample_id: path} of masks/; every entry must be `<sample_id>.png` of the split."""
    if not folder.is_dir():
        raise InputError(folder, "must be a folder of <sample_id>.png masks")
    found: dict[str, Path] = {}
    unexpected: list[str] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda entry: entry.name):
            if entry.is_symlink():
                raise InputError(folder / entry.name, "symbolic links are not accepted in a submission")
            kind = "dir" if entry.is_dir(follow_symlinks=False) else "file" if entry.is_file(follow_symlinks=False) else "other"
            problem = _mask_name_problem(entry.name, kind, card, split, split_of)
            if problem:
                unexpected.append(f"{entry.name} ({problem})")
            else:
                found[entry.name[: -len(MASK_SUFFIX)]] = folder / entry.name
    if unexpected:
        raise InputError(folder, _unexpected_entries(unexpected))
    return found


def _unexpected_entries(unexpected: list[str]) -> str:
    return f"{len(unexpected)} unexpected entr{'y' if len(unexpected) == 1 else 'ies'}: {_listing(unexpected)}"


def _mask_name_problem(name: str, kind: str, card: DatasetCard, split: str, split_of: dict[str, str]) -> str | None:
    """Why an entry of masks/ (kind: file, dir or other) is not a mask of the split, if it is not."""
    if kind == "dir":
        return "a sub-folder"
    if kind != "file":
        return "not a regular file"
    if not name.endswith(MASK_SUFFIX):
        return f"not {MASK_SUFFIX}"
    return _where_else(name[: -len(MASK_SUFFIX)], card, split, split_of)


# --- the description printed by `mtlbench evaluate --format` ----------------------------------


def expected_format(card: DatasetCard | None, split: str | None) -> str:
    """The submission format in plain text; with a dataset (and split), its exact names and ids."""
    lines = [
        "mtlbench submission format (docs/format-submission.md)",
        "",
        "A folder, or a .zip of one (files at the zip's root or inside exactly one top-level folder),",
        "holding one or both tasks:",
        f"  {ACTIVITIES_FILE}          activity task: UTF-8 CSV with a header line",
        "    sample_id             every sample of the split, each exactly once",
        "    activity              activity name (exact, or ignoring case, spaces, '-' and '_') or its integer id",
        "    score_<activity>      optional: one column per activity, all or none; probabilities in [0, 1]",
        f"                          summing to 1 per row (within {SCORE_SUM_TOLERANCE})",
        f"  {MASKS_FOLDER}/<sample_id>{MASK_SUFFIX}   segmentation task: single-channel 8-bit PNG (mode L),",
        f"                          the frame's exact size, class ids 0..K-1 ({IGNORE_INDEX} is not a prediction);",
        f"                          nothing else in {MASKS_FOLDER}/",
        f'  {META_FILE}         optional: {{"method": str, "dataset_fingerprint": str, "split": str,',
        '                          "seed": int or null, "parameters": {...}, "parameter_count": int, ...}',
        "A missing prediction is an error (--allow-missing scores it as wrong instead).",
        f"Zips: at most {MAX_ZIP_ENTRIES} entries; no absolute paths, '..', drive letters or symbolic links;",
        "only the files above are extracted, each at most the size its content can need.",
    ]
    if card is not None:
        lines += ["", *_dataset_description(card, split)]
    return "\n".join(lines) + "\n"


def _dataset_description(card: DatasetCard, split: str | None) -> list[str]:
    score_columns = [score_column(name) for name in card.activities]
    lines = [
        f"Dataset: {card.name} {card.meta['version']}",
        f"  dataset_fingerprint: {card.fingerprint}",
        "  activities (id name): " + ", ".join(f"{i} {name}" for i, name in enumerate(card.activities)),
        "  classes (id name): " + ", ".join(f"{cls.id} {cls.name}" for cls in card.classes),
        "  score columns: " + _csv_row(score_columns),
    ]
    if split is None:
        counts = ", ".join(f"{name} {info['samples']}" for name, info in card.meta["splits"].items())
        return lines + [f"  samples per split: {counts} (name a split to list its sample ids)"]
    samples = card.split(split)
    if not samples:
        return lines + [f"Split: {split} has no samples: nothing to evaluate"]
    sizes = sorted({(sample.width, sample.height) for sample in samples})
    size_text = (
        f"{sizes[0][0]}x{sizes[0][1]} (width x height)"
        if len(sizes) == 1
        else f"{len(sizes)} sizes: see width,height in samples.csv"
    )
    first = samples[0]
    one_hot = ["1" if i == 0 else "0" for i in range(len(card.activities))]
    return lines + [
        f"Split: {split}, {len(samples)} samples; mask size {size_text}",
        f"  first sample ids: {', '.join(sample.sample_id for sample in samples[:FORMAT_EXAMPLE_IDS])}",
        "Example:",
        f"  {ACTIVITIES_FILE}: {_csv_row(['sample_id', 'activity', *score_columns])}",
        f"                  {_csv_row([first.sample_id, card.activities[0], *one_hot])}",
        f"  {MASKS_FOLDER}/{first.sample_id}{MASK_SUFFIX}: {first.width}x{first.height}, values in 0..{len(card.classes) - 1}",
        f'  {META_FILE}: {{"method": "my-method", "dataset_fingerprint": "{card.fingerprint}", "split": "{split}"}}',
    ]


def _csv_row(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()
