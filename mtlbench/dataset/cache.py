"""A prepared cache of one dataset split: every frame and mask decoded and resized once, kept as
memory-mapped uint8 arrays.

Decoding a full-size 1280x1024 PNG costs a core 17-50 ms, so a loader that decodes every epoch
delivers a few dozen frames per second per core; from the cache a frame costs a memory copy.

One cache holds one (dataset fingerprint, split, size, resize rule), in
`<cache folder>/<fingerprint>/<split>-<H>x<W>-<rule>/`:

- images.npy: (N, 3, H, W) uint8, the split's samples in the dataset's order, planar as torch
  lays images out (a frame is then one contiguous block: reading it is a plain copy);
- masks.npy: (N, H, W) uint8 class ids, only if the dataset has a segmentation task;
- cache.json: what the arrays hold: the key, the sample ids in order, and the version of the
  resize rule and of the library that computed its pixels (mtlbench/dataset/resize.py).

Opening compares cache.json with what is wanted and checks the arrays' shapes; a cache that
differs in anything, lacks a file or does not read is rebuilt. A build writes into a temporary
folder next to the target, cache.json last, and renames it into place (outputs.atomic_folder),
so a cache is whole or absent; a build's leftovers (a crash, kill -9) are ignored and removed
by the next build. Builders of one cache take turns through a lock file beside it: concurrent
runs (the ranks of a distributed run, two runs on one dataset) build it once and then open it.
Frames are decoded in parallel worker processes and written in order: a rebuild gives the same
bytes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from mtlbench.dataset.loader import read_resized
from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.dataset.resize import check_rule, rule_implementation
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json, write_json
from mtlbench.outputs import atomic_folder, check_output_folder
from mtlbench.parallel import ordered_map
from mtlbench.progress import ProgressFn, silent

CACHE_FORMAT = "mtlbench-cache"
CACHE_FORMAT_VERSION = 1
CACHE_ENV = "MTLBENCH_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/mtlbench")
MANIFEST, IMAGES, MASKS = "cache.json", "images.npy", "masks.npy"


def cache_folder(cache_dir: str | Path | None, option: str) -> tuple[Path, str]:
    """The folder that holds the caches and the name to give it in messages: `cache_dir` (named
    `option`), else $MTLBENCH_CACHE, else ~/.cache/mtlbench."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser(), option
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser(), f"${CACHE_ENV}"
    return DEFAULT_CACHE_DIR.expanduser(), f"the default cache folder {DEFAULT_CACHE_DIR}"


class PreparedSplit:
    """An opened cache: `samples` in order; `images` (N, 3, H, W) and `masks` (N, H, W) or None,
    read-only memory maps of uint8."""

    def __init__(self, folder: Path, samples: tuple[Sample, ...], size: tuple[int, int], with_masks: bool):
        self.folder, self.samples, self.size, self.with_masks = folder, samples, size, with_masks
        count, (height, width) = len(samples), size
        self.images = _open_array(folder / IMAGES, (count, 3, height, width))
        self.masks = _open_array(folder / MASKS, (count, height, width)) if with_masks else None

    def __len__(self) -> int:
        return len(self.samples)

    def frame_pair(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Sample `index`'s frame (3, H, W) and mask (H, W; None without segmentation): read-only views."""
        return self.images[index], None if self.masks is None else self.masks[index]

    # Pickled (a spawned loader worker), an opened cache travels as its folder and reopens its
    # maps there: pickling a memory map would copy the whole array.
    def __getstate__(self) -> dict:
        return {"folder": self.folder, "samples": self.samples, "size": self.size, "with_masks": self.with_masks}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


def open_cache(
    card: DatasetCard,
    split: str,
    size: tuple[int, int],
    rule: str,
    cache_dir: str | Path | None = None,
    *,
    option: str = "cache_dir",
    workers: int | None = None,
    progress: ProgressFn = silent,
) -> PreparedSplit:
    """The cache of `split` of `card` at `size` (height, width) by resize `rule`, built first if it
    is missing or differs. `workers` decode in parallel (None: one per available core); `option`
    names `cache_dir` in errors."""
    root, option = cache_folder(cache_dir, option)
    rule = check_rule(rule)
    samples, size = card.split(split), (int(size[0]), int(size[1]))
    folder = root / card.fingerprint / f"{split}-{size[0]}x{size[1]}-{rule}"
    wanted = _manifest(card, split, samples, size, rule)
    opened = _open_if_current(folder, wanted, samples, size)
    if opened is not None:
        return opened
    check_output_folder(folder, option, overwrite=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.parent / f".{folder.name}.lock", f"Waiting for another process to build {folder}", progress):
        opened = _open_if_current(folder, wanted, samples, size)  # built by another process meanwhile
        if opened is None:
            _build(card, samples, size, rule, folder, wanted, option, workers or available_cores(), progress)
            opened = PreparedSplit(folder, samples, size, wanted["masks"])
    return opened


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _manifest(card: DatasetCard, split: str, samples: Sequence[Sample], size: tuple[int, int], rule: str) -> dict:
    return {
        "format": CACHE_FORMAT,
        "format_version": CACHE_FORMAT_VERSION,
        "dataset": card.name,
        "fingerprint": card.fingerprint,
        "split": split,
        "size": list(size),
        "resize": rule_implementation(rule),
        "masks": card.segmentation is not None,
        "samples": [sample.sample_id for sample in samples],
    }


def _open_array(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.shape != shape or array.dtype != np.uint8:
        raise ValueError(f"{path}: {array.shape} {array.dtype}, expected {shape} uint8")
    return array


def _open_if_current(folder: Path, wanted: dict, samples: tuple[Sample, ...], size: tuple[int, int]) -> PreparedSplit | None:
    """The cache in `folder` if it is complete and holds what `wanted` describes, else None."""
    try:
        if read_json(folder / MANIFEST) != wanted:
            return None
        return PreparedSplit(folder, samples, size, wanted["masks"])
    except (InputError, OSError, ValueError):  # absent, unreadable, truncated or of another shape
        return None


@contextlib.contextmanager
def _exclusive(lock: Path, waiting: str, progress: ProgressFn) -> Iterator[None]:
    """Hold an exclusive lock on `lock`, saying `waiting` while another process holds it; the
    system releases it when the process ends, however it ends.

    The lock file stays: removing it could let a waiting process and a newcomer lock two
    different files of one name. A script whose top level opens a cache needs `if __name__ ==
    "__main__":` (as any script with worker processes): a build worker that re-runs it would
    wait here for its own parent.
    """
    import fcntl  # POSIX only; imported here so that loading without a cache works everywhere

    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            done = progress(waiting, 1)
            fcntl.flock(handle, fcntl.LOCK_EX)
            done()
        yield


@dataclass(frozen=True)
class _FrameJob:
    root: Path
    sample: Sample
    size: tuple[int, int]
    rule: str


def _prepare(job: _FrameJob) -> tuple[np.ndarray, np.ndarray | None]:
    # Each build worker has a core: torch's own threads would only contend with the other
    # workers (and spin between frames). Restored, for a build that runs in the caller's process.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return read_resized(job.root, job.sample, job.size, job.rule)
    finally:
        torch.set_num_threads(threads)


def _build(
    card: DatasetCard, samples: tuple[Sample, ...], size: tuple[int, int], rule: str, folder: Path, manifest: dict, option: str,
    workers: int, progress: ProgressFn,
) -> None:
    """Decode every frame into a temporary folder, append it to the arrays in order, write cache.json, rename."""
    shapes = {IMAGES: (len(samples), 3, *size), **({MASKS: (len(samples), *size)} if manifest["masks"] else {})}
    jobs = [_FrameJob(card.root, sample, size, rule) for sample in samples]
    with atomic_folder(folder, overwrite=True, option=option) as staging:
        try:
            with contextlib.ExitStack() as files:
                # Plain appends rather than a writable memory map: a full disk is then an error
                # here, not a SIGBUS that kills the process.
                arrays = {name: files.enter_context(open(staging / name, "wb")) for name in shapes}
                for name, shape in shapes.items():
                    np.lib.format.write_array_header_1_0(arrays[name], {"descr": "|u1", "fortran_order": False, "shape": shape})
                advance = progress(f"Caching {card.name} {folder.name}", len(jobs))
                for image, mask in ordered_map(_prepare, jobs, min(workers, max(len(jobs), 1)), advance):
                    arrays[IMAGES].write(np.ascontiguousarray(image).data)
                    if MASKS in arrays:
                        arrays[MASKS].write(np.ascontiguousarray(mask).data)
            write_json(staging / MANIFEST, manifest)
        except OSError as exc:
            raise InputError(folder, f"{option}: cannot write the cache ({exc.strerror or exc})") from None
