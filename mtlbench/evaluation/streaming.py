"""Decoding prediction and ground-truth masks in worker processes into per-frame confusions.

Only (K, K + 1) confusion matrices leave the workers, so memory stays bounded by the number of
frames and classes, never by the masks. Each prediction is checked while it is read: a PNG
that is corrupt, not single-channel 8-bit, of another size than its ground truth (checked from
the header, before anything is decoded) or holding a value outside 0..K-1 stops the evaluation
with a one-line error naming the file. Each ground-truth mask is checked against its sha256 in
samples.csv before it is decoded (mtlbench.dataset.files): results are never stamped with the
fingerprint of a dataset whose masks changed after the build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from mtlbench.dataset.files import read_mask
from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.metrics.confusion import LabelRangeError, frame_confusion, missing_frame_confusion
from mtlbench.parallel import ordered_map
from mtlbench.pngio import MAX_IMAGE_PIXELS
from mtlbench.progress import ProgressFn, silent


@dataclass(frozen=True)
class MaskPair:
    dataset_root: Path
    sample: Sample  # its mask is the ground truth
    prediction: Path | None  # None: no prediction (scored under --allow-missing)
    num_classes: int

    @property
    def width(self) -> int:
        return self.sample.width

    @property
    def height(self) -> int:
        return self.sample.height


def _read_prediction(pair: MaskPair) -> np.ndarray:
    path = pair.prediction
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise InputError(path, f"not a PNG file (found {image.format})")
            if image.size != (pair.width, pair.height):
                width, height = image.size
                raise InputError(path, f"mask is {width}x{height}, ground truth is {pair.width}x{pair.height}")
            if image.mode != "L":
                raise InputError(path, f"mask must be single-channel 8-bit (mode L), found mode {image.mode}")
            if pair.width * pair.height > MAX_IMAGE_PIXELS:
                raise InputError(path, f"mask exceeds the limit of {MAX_IMAGE_PIXELS} pixels")
            image.load()
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(path, f"corrupt or unreadable PNG ({exc.__class__.__name__}: {exc})") from None


def pair_confusion(pair: MaskPair) -> np.ndarray:
    ground_truth = read_mask(pair.dataset_root, pair.sample)
    if pair.prediction is None:
        return missing_frame_confusion(ground_truth, pair.num_classes)
    prediction = _read_prediction(pair)
    try:
        return frame_confusion(ground_truth, prediction, pair.num_classes)
    except LabelRangeError as error:
        if error.in_prediction:
            raise InputError(pair.prediction, str(error)) from None
        raise InputError(pair.dataset_root / pair.sample.mask, f"{error} (the dataset was built wrongly: rebuild it)") from None


def frame_confusions(pairs: Sequence[MaskPair], num_classes: int, workers: int = 1, progress: ProgressFn = silent) -> np.ndarray:
    """(F, K, K + 1) int64 confusions in the order of `pairs`."""
    advance = progress("Scoring masks", len(pairs))
    result = np.zeros((len(pairs), num_classes, num_classes + 1), dtype=np.int64)
    for index, confusion in enumerate(ordered_map(pair_confusion, pairs, workers, advance)):
        result[index] = confusion
    return result
