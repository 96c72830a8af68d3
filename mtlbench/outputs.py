"""Where outputs go, checked before any work starts, and outputs that appear whole or not at all.

Every command checks each of its output paths first (`check_output_file`, `check_output_folder`):
an existing folder where a file is wanted, an existing non-empty folder without --overwrite, a
file where a folder is wanted, or a place that cannot be written stop it with one line before
anything is computed or written. Folders are then written under a hidden temporary name next to
the target and renamed at the end (`atomic_folder`), files through a temporary name
(`write_bytes`); on any error, Ctrl-C or SIGTERM the temporary is removed. A build killed outright
(kill -9) cannot clean up after itself: the next build into the same target removes temporary
folders whose process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mtlbench.errors import InputError

_STAGING = re.compile(r"^\.(?P<name>.+)\.(?:partial|replaced)-(?P<pid>\d+)$")


def _writable_ancestor(path: Path, option: str) -> None:
    """The nearest existing folder above `path` must be a folder we can create files in."""
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(path, f"{option}: {ancestor} is a file, not a folder")
    try:
        # A real attempt, not os.access: access() says yes to root on read-only places such as /sys.
        with tempfile.TemporaryFile(dir=ancestor, prefix=".mtlbench-probe-"):
            pass
    except OSError as exc:
        raise InputError(path, f"{option}: cannot write in {ancestor} ({exc.strerror})") from None


def check_output_file(path: str | Path, option: str) -> Path:
    """A file to be written at `path` (replacing an existing file)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, f"{option} names an existing folder; give a file path")
    _writable_ancestor(path, option)
    return path


def check_output_folder(path: str | Path, option: str, overwrite: bool) -> Path:
    """A folder to be created at `path`; an existing non-empty one only with overwrite."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, f"{option} names an existing file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(path, "output folder exists and is not empty (use --overwrite to replace it)")
    _writable_ancestor(path, option)
    return path


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the temporary folders of `target` left by processes that no longer run; returns them."""
    removed = []
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        match = _STAGING.match(entry.name)
        if match and match["name"] == target.name and entry.is_dir() and not _process_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_folder(target: Path, overwrite: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder next to `target`; rename it to `target` only on success.

    The temporary folder sits in the same parent so the final rename is atomic on one file
    system. On any exception (including Ctrl-C, and SIGTERM where the CLI turns it into one)
    the temporary folder is removed.
    """
    target = Path(target)
    check_output_folder(target, option, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
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


def write_bytes(path: Path, data: bytes) -> str:
    """Write bytes (through a temporary name, then rename) and return their sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
