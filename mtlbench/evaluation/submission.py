"""Reading and validating a submission: a predictions folder, or a .zip of one.

A submission carries one or more of its dataset's tasks: each task's predictions are a file or
folder at the submission's root whose name and format its task type's scorer owns
(mtlbench/evaluation/scorers/), plus an optional submission.json. The format and every rule are
documented in docs/format-submission.md; the text of `mtlbench evaluate --format` is
`expected_format`, so the two cannot drift apart. Everything but the pixels of the masks is
checked here, before any scoring starts; masks are checked while they are decoded.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.scorers import scorer_of
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.evaluation.scorers.base import ZipEntry
from mtlbench.evaluation.scorers.common import SplitContext, listing, refuse_symlink
from mtlbench.jsonio import read_json
from mtlbench.tasks import Task

META_FILE = "submission.json"
# A zip's directory is read whole: a prediction per frame of the largest split stays far below this.
MAX_ZIP_ENTRIES = 500_000
# The most a submission.json may declare in a zip (a configuration, not data).
MAX_META_BYTES = 8 * 2**20
# Finder's "Compress" adds resource forks under this folder; they are skipped, never extracted.
MACOS_METADATA_FOLDER = "__MACOSX"
FORMAT_EXAMPLE_IDS = 5
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Submission:
    root: Path  # folder holding the files (inside a temporary folder for a zip)
    tasks: tuple[str, ...]  # names of the tasks it carries, in the dataset's task order
    predictions: dict[str, dict[str, Any]]  # task -> {sample_id: prediction} (the scorer's type)
    missing: dict[str, tuple[str, ...]]  # task -> sample ids without a prediction; only tasks missing some
    meta: dict  # submission.json content, {} if absent


@contextlib.contextmanager
def open_submission(
    path: Path, card: DatasetCard, split: str, *, allow_missing: bool = False, ignore_fingerprint: bool = False
) -> Iterator[Submission]:
    """Validate a predictions folder or zip against one split of `card` and yield its content.

    From a zip, only what is read is extracted, into a temporary folder that exists only inside
    the `with` block.
    """
    path = Path(path)
    context = SplitContext(card, split, _split_samples(card, split))
    if path.is_dir():
        yield _read_folder(path, context, allow_missing, ignore_fingerprint)
    elif path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="mtlbench-submission-") as scratch:
            root = _extract_zip(path, Path(scratch), context)
            yield _read_folder(root, context, allow_missing, ignore_fingerprint)
    elif path.exists():
        raise InputError(path, "a submission is a folder or a .zip file")
    else:
        raise InputError(path, "not found")


def _split_samples(card: DatasetCard, split: str) -> tuple[Sample, ...]:
    samples = card.split(split)
    if not samples:
        raise InputError(card.root / "dataset.json", f"split {split!r} has no samples to evaluate")
    return samples


def _task_files(card: DatasetCard) -> dict[str, Task]:
    """Name at a submission's root -> the task it carries."""
    return {task.submission_name: task for task in card.tasks}


# --- zip ----------------------------------------------------------------------------------------


def _extract_zip(path: Path, scratch: Path, context: SplitContext) -> Path:
    """Check every entry, extract only the files the reader will read into `scratch`, return it.

    Everything is decided from the zip's directory before a byte is extracted: unsafe or
    duplicate entries refuse the whole zip; entries the reader never reads (other files at the
    root, __MACOSX) are skipped; what a task's reader would refuse (e.g. other files in masks/)
    is refused; and each extracted entry must declare at most what its file can need for this
    split (zipfile stops every entry at its declared size, so the bound holds for what is written).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [info for info in archive.infolist() if _entry_parts(info)[:1] != (MACOS_METADATA_FOLDER,)]
            _check_zip_entries(path, entries)
            prefix = _zip_prefix(path, entries, context.card)
            chosen = _entries_to_extract(path, entries, prefix, context)
            for info, entry in chosen:
                if info.file_size > entry.limit:
                    raise InputError(
                        path,
                        f"entry {info.filename!r} declares {info.file_size} bytes, more than a {entry.what} can need "
                        f"({entry.limit}); nothing was extracted",
                    )
            for info, entry in chosen:
                _extract_entry(path, archive, info, scratch.joinpath(*entry.relative))
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


def _zip_prefix(path: Path, entries: list[zipfile.ZipInfo], card: DatasetCard) -> tuple[str, ...]:
    """() when the submission files are at the zip's root, else (folder,) of its one top-level folder."""
    known = set(_task_files(card)) | {META_FILE}
    top = sorted({_entry_parts(info)[0] for info in entries if _entry_parts(info)})
    if any(name in known for name in top):
        return ()
    if len(top) == 1 and any(len(_entry_parts(info)) > 1 or info.is_dir() for info in entries):
        return (top[0],)
    found = ", ".join(top[:10]) or "nothing"
    raise InputError(
        path, f"expected {' and/or '.join(sorted(_task_files(card)))} at the root or inside one top-level folder (found: {found})"
    )


def _entries_to_extract(
    path: Path, entries: list[zipfile.ZipInfo], prefix: tuple[str, ...], context: SplitContext
) -> list[tuple[zipfile.ZipInfo, ZipEntry]]:
    """(entry, where it goes and its size limit) of each entry a reader will read; checked as above."""
    files = _task_files(context.card)
    below: dict[str, list[tuple[zipfile.ZipInfo, tuple[str, ...]]]] = {}
    for info in entries:
        parts = _entry_parts(info)
        if parts[: len(prefix)] == prefix and len(parts) > len(prefix) and (parts[len(prefix)] in files or parts[len(prefix):] == (META_FILE,)):
            below.setdefault(parts[len(prefix)], []).append((info, parts[len(prefix) :]))
    chosen = []
    for name, items in sorted(below.items()):
        if name == META_FILE:
            chosen += [(info, ZipEntry(relative, "submission.json", MAX_META_BYTES)) for info, relative in items]
            continue
        task = files[name]
        infos = {relative: info for info, relative in items}
        wanted = scorer_of(task).zip_entries(task, name, [(relative, info.is_dir()) for info, relative in items], context, path / "/".join(prefix))
        chosen += [(infos[entry.relative], entry) for entry in wanted]
    return chosen


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


def _read_folder(root: Path, context: SplitContext, allow_missing: bool, ignore_fingerprint: bool) -> Submission:
    card = context.card
    meta = _read_meta(root / META_FILE, context, ignore_fingerprint)
    present: dict[str, Path] = {}
    for name, task in _task_files(card).items():
        refuse_symlink(root / name)
        if (root / name).exists():
            present[task.name] = root / name
    if not present:
        expected = ", ".join(f"{name} ({task.name})" for name, task in _task_files(card).items())
        raise InputError(root, f"no predictions: expected one or more of {expected}")
    predictions, missing = {}, {}
    for task in card.tasks:
        if task.name not in present:
            continue
        predictions[task.name] = scorer_of(task).read(task, present[task.name], context)
        absent = tuple(sample.sample_id for sample in context.samples if sample.sample_id not in predictions[task.name])
        if absent and not allow_missing:
            raise InputError(
                present[task.name],
                f"{len(absent)} of {len(context.samples)} predictions missing: {listing(absent)} (--allow-missing scores them as wrong)",
            )
        if absent:
            missing[task.name] = absent
    tasks = tuple(task.name for task in card.tasks if task.name in predictions)
    return Submission(root, tasks, predictions, missing, meta)


# --- submission.json ----------------------------------------------------------------------------

_META_TYPES = {
    "method": (str,),
    "dataset_fingerprint": (str,),
    "split": (str,),
    "seed": (int, type(None)),
    "parameters": (dict,),
    "parameter_count": (int,),
}


def _read_meta(path: Path, context: SplitContext, ignore_fingerprint: bool) -> dict:
    refuse_symlink(path)
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
    card = context.card
    claimed = meta.get("dataset_fingerprint")
    if claimed is not None and claimed != card.fingerprint and not ignore_fingerprint:
        raise InputError(
            path,
            f"dataset_fingerprint {claimed} differs from {card.name}'s {card.fingerprint} "
            "(made for another dataset version? --ignore-fingerprint evaluates anyway)",
        )
    if "split" in meta and meta["split"] != context.split:
        raise InputError(path, f"made for split {meta['split']!r}, but split {context.split!r} is evaluated")
    return meta


# --- the description printed by `mtlbench evaluate --format` ----------------------------------


def expected_format(card: DatasetCard | None, split: str | None) -> str:
    """The submission format in plain text; with a dataset (and split), its tasks, names and ids."""
    lines = [
        "mtlbench submission format (docs/format-submission.md)",
        "",
        "A folder, or a .zip of one (files at the zip's root or inside exactly one top-level folder),",
        "holding the predictions of one or more of the dataset's tasks, each in the file or folder its",
        "task type defines:",
    ]
    if card is None:
        lines += [f"  {kind + ' task':<22}{SCORERS.get(kind).summary}" for kind in SCORERS.names()]
        lines.append("(name a dataset with --dataset to see its tasks, names and sample ids)")
    else:
        context = SplitContext(card, split, card.split(split)) if split is not None else None
        for task in card.tasks:
            lines += scorer_of(task).describe(task, context)
    lines += [
        f'  {META_FILE:<24}optional: {{"method": str, "dataset_fingerprint": str, "split": str,',
        '                          "seed": int or null, "parameters": {...}, "parameter_count": int, ...}',
        "A missing prediction is an error (--allow-missing scores it as wrong instead).",
        f"Zips: at most {MAX_ZIP_ENTRIES} entries; no absolute paths, '..', drive letters or symbolic links;",
        "only the files above are extracted, each at most the size its content can need.",
    ]
    if card is not None:
        lines += ["", *_dataset_description(card, split)]
    return "\n".join(lines) + "\n"


def _dataset_description(card: DatasetCard, split: str | None) -> list[str]:
    lines = [
        f"Dataset: {card.name} {card.meta['version']}",
        f"  dataset_fingerprint: {card.fingerprint}",
        "  tasks: " + ", ".join(f"{task.name} ({task.kind})" for task in card.tasks),
    ]
    if split is None:
        counts = ", ".join(f"{name} {info['samples']}" for name, info in card.statistics.items())
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
    return lines + [
        f"Split: {split}, {len(samples)} samples; frame size {size_text}",
        f"  first sample ids: {', '.join(sample.sample_id for sample in samples[:FORMAT_EXAMPLE_IDS])}",
        f'  {META_FILE}: {{"method": "my-method", "dataset_fingerprint": "{card.fingerprint}", "split": "{split}"}}',
    ]
