"""Re-hashing a dataset folder's files against its manifest."""

from __future__ import annotations

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.outputs import sha256_file
from mtlbench.progress import ProgressFn, silent

DATA_FOLDERS = ("images", "masks")


def dataset_files(card: DatasetCard) -> list[tuple[str, str]]:
    """(path relative to the folder, sha256) of every image and mask samples.csv lists."""
    files = []
    for sample in card.samples:
        files.append((sample.image, sample.image_sha256))
        if sample.mask_file is not None:
            files.append(tuple(sample.mask_file))
    return files


def verify_files(card: DatasetCard, progress: ProgressFn = silent) -> list[str]:
    """Problems found: files missing, files whose sha256 differs, data files not in the manifest."""
    problems = []
    listed: set[str] = set()
    files = dataset_files(card)
    advance = progress("Verifying", len(files))
    for relative, expected in files:
        listed.add(relative)
        path = card.root / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{relative}: sha256 differs from samples.csv")
        advance()
    for folder in DATA_FOLDERS:
        for path in sorted((card.root / folder).rglob("*")):
            relative = path.relative_to(card.root).as_posix()
            if path.is_file() and relative not in listed:
                problems.append(f"{relative}: not listed in samples.csv")
    return problems
