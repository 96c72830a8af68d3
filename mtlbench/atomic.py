"""Output folders that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from mtlbench.errors import InputError


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty target unless overwriting was asked for."""
    if target.exists() and not target.is_dir():
        raise InputError(target, "output path exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise InputError(target, "output folder exists and is not empty (use --overwrite to replace it)")


@contextlib.contextmanager
def atomic_folder(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; rename it to `target` only on success.

    The temporary folder sits in the same parent so the final rename is atomic on one file
    system. On any exception (including Ctrl-C) the temporary folder is removed.
    """
    target = Path(target)
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            retired = target.parent / f".{target.name}.replaced-{os.getpid()}"
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
