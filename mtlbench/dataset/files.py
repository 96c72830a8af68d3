"""Reading the images and masks of a dataset folder, each checked against samples.csv.

Every reader of a dataset's files (loader, evaluator, exports, robustness builder, runners) goes
through these functions: the file's bytes are hashed before they are decoded, and a file whose
sha256 differs from its samples.csv row is refused, so no result, export or derived dataset can
carry the fingerprint of data it was not computed from. Hashing costs about a tenth of decoding
a PNG (sha256 runs at well over 1 GB/s); the bytes are read once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.pngio import read_class_mask, read_rgb

CHANGED = "sha256 differs from samples.csv: the file changed after the dataset was built (mtlbench info --verify lists every changed file)"


def read_dataset_file(root: Path, relative: str, sha256: str) -> bytes:
    """The bytes of one file of the dataset at `root`, refused unless their sha256 is `sha256`."""
    path = Path(root) / relative
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "missing: listed in samples.csv but not in the dataset folder") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(path, CHANGED)
    return data


def _check_size(array: np.ndarray, sample: Sample, path: Path) -> np.ndarray:
    if array.shape[:2] != (sample.height, sample.width):
        raise InputError(path, f"size {array.shape[1]}x{array.shape[0]} differs from samples.csv ({sample.width}x{sample.height})")
    return array


def read_image(root: Path, sample: Sample) -> np.ndarray:
    """A sample's frame as an (H, W, 3) uint8 array, verified."""
    data = read_dataset_file(root, sample.image, sample.image_sha256)
    return _check_size(read_rgb(data, Path(root) / sample.image), sample, Path(root) / sample.image)


def read_mask(root: Path, sample: Sample) -> np.ndarray:
    """A sample's mask of class ids as an (H, W) uint8 array, verified."""
    data = read_dataset_file(root, sample.mask, sample.mask_sha256)
    return _check_size(read_class_mask(data, Path(root) / sample.mask), sample, Path(root) / sample.mask)
