"""Per-frame pixel confusion matrices, computed fast enough to keep up with PNG decoding.

A confusion matrix here has shape (K, K + 1): rows are ground-truth classes, columns predicted
classes, and the extra last column counts pixels that have no prediction at all (a missing
mask scored under --allow-missing). Ground-truth pixels equal to IGNORE_INDEX are left out.

Every pixel gets the code gt * K + pred of its confusion cell, and the codes are counted in one
of two ways, chosen per frame by how many runs (stretches of equal codes in row-major order)
the frame has; both give the same integer counts:

- run counting: masks are mostly piecewise constant, so the runs are found with one vectorised
  comparison and only they are counted; the cost grows with the number of runs, and scattered
  pixel noise makes two runs of every noisy pixel;
- a histogram of all the codes, whose cost barely depends on the content.

On 1280x1024 masks the method chosen costs 0.6-1.1 ms a frame, whatever the prediction, against
7-8.5 ms for decoding the two PNGs; run counting alone took 2.3 ms on a prediction with 5% of
its pixels flipped and 14 ms on random pixels (docs/metrics.md, Speed).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from mtlbench.taxonomies import IGNORE_INDEX

# With K * K <= 256 - K the code gt * K + pred of valid pixels fits in uint8 below the
# wrap-around images of the ignored ground truth (255 * K mod 256 = 256 - K and up).
_MAX_CLASSES_UINT8 = 15

# Above this many pixels per run, run counting is the cheaper method. Measured on 1280x1024
# frames: run counting costs ~15 ns a run; Pillow's histogram of byte codes 0.4-0.9 ms a frame,
# numpy's bincount of 16-bit codes 2-3.5 ms, so they break even near these densities.
_PIXELS_PER_RUN_AT_BREAK_EVEN = {np.dtype(np.uint8): 40, np.dtype(np.uint16): 3}

Counting = Literal["auto", "runs", "histogram"]


class LabelRangeError(ValueError):
    """A mask holds a value outside its valid range; `in_prediction` says which mask."""

    def __init__(self, message: str, in_prediction: bool):
        super().__init__(message)
        self.in_prediction = in_prediction


def _check_masks(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> None:
    """Refuse masks that are not uint8 of one shape, or hold a value outside their range.

    Both masks are range-checked before any code is formed, so no out-of-range value can alias
    a valid or an ignored one through the uint8 wrap-around.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: {gt.shape} vs {pred.shape}")
    if gt.dtype != np.uint8 or pred.dtype != np.uint8:
        raise ValueError(f"masks must be uint8, got {gt.dtype} and {pred.dtype}")
    k = num_classes
    top = int(pred.max())
    if top >= k:
        raise LabelRangeError(f"predicted class value {top} is out of range 0..{k - 1}", in_prediction=True)
    # gt.max() < K settles most frames in one pass; otherwise adding 1 wraps the ignore value
    # 255 round to 0, so the maximum of gt + 1 finds every other value >= K
    if int(gt.max()) >= k and int((gt + np.uint8(1)).max()) > k:
        invalid = int(gt[(gt >= k) & (gt != IGNORE_INDEX)][0])
        raise LabelRangeError(
            f"ground-truth value {invalid} is outside 0..{k - 1} and is not the ignore value {IGNORE_INDEX}", in_prediction=False
        )


def _cell_codes(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """gt * K + pred: a valid pixel's confusion cell, a code >= K * K for an ignored one."""
    if num_classes <= _MAX_CLASSES_UINT8:
        codes = gt * np.uint8(num_classes)
    else:
        codes = gt.astype(np.uint16) * np.uint16(num_classes)
    codes += pred
    return codes


def _run_counts(codes: np.ndarray, changes: np.ndarray, cells: int) -> np.ndarray:
    """Counts of each code from its runs; `changes[i]` is codes[i + 1] != codes[i] (flat codes)."""
    boundaries = np.flatnonzero(changes)
    starts = np.empty(boundaries.size + 1, dtype=np.intp)
    starts[0] = 0
    starts[1:] = boundaries + 1
    lengths = np.diff(starts, append=codes.size)
    # float64 weights count exactly up to 2**53 pixels
    return np.bincount(codes[starts], weights=lengths, minlength=cells).astype(np.int64)


def _byte_histogram(codes: np.ndarray) -> np.ndarray:
    """Counts of each of the 256 byte values of flat uint8 `codes`.

    Pillow reads the bytes as 4-channel pixels and keeps one histogram per channel, so
    consecutive codes go to different counters and runs of equal codes do not queue on one
    counter: on 1280x1024 masks with scattered noise a single table (numpy's bincount, a
    greyscale histogram) is 2-4 times slower.
    """
    whole_pixels = codes.size - codes.size % 4
    counts = np.bincount(codes[whole_pixels:], minlength=256)
    if whole_pixels:
        per_channel = Image.fromarray(codes[:whole_pixels].reshape(1, -1, 4)).histogram()
        counts += np.asarray(per_channel, dtype=np.int64).reshape(4, 256).sum(axis=0)
    return counts


def _histogram(codes: np.ndarray, cells: int) -> np.ndarray:
    """Counts of each code of flat `codes`, visiting every pixel."""
    return _byte_histogram(codes) if codes.dtype == np.uint8 else np.bincount(codes, minlength=cells)


def _count_cells(codes: np.ndarray, cells: int, counting: Counting) -> np.ndarray:
    """How many times each code occurs in `codes` (int64, at least `cells` long)."""
    if counting not in ("auto", "runs", "histogram"):
        raise ValueError(f"counting must be 'auto', 'runs' or 'histogram', got {counting!r}")
    flat = codes.reshape(-1)
    if counting == "histogram":
        return _histogram(flat, cells)
    changes = flat[1:] != flat[:-1]
    if counting == "auto" and np.count_nonzero(changes) * _PIXELS_PER_RUN_AT_BREAK_EVEN[flat.dtype] > flat.size:
        return _histogram(flat, cells)
    return _run_counts(flat, changes, cells)


def frame_confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, counting: Counting = "auto") -> np.ndarray:
    """(K, K + 1) int64 confusion of one frame; `gt` and `pred` are (H, W) uint8 of equal shape.

    Raises LabelRangeError when `pred` holds a value >= K or `gt` a value >= K other than 255.
    `counting` chooses the method: "auto" counts runs when the frame has few, else histograms
    every pixel; "runs" and "histogram" force one (both give the same counts).
    """
    _check_masks(gt, pred, num_classes)
    k = num_classes
    counts = _count_cells(_cell_codes(gt, pred, k), k * k, counting)
    confusion = np.zeros((k, k + 1), dtype=np.int64)
    confusion[:, :k] = counts[: k * k].reshape(k, k)
    return confusion


def missing_frame_confusion(gt: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion of a frame without prediction: every evaluated pixel lands in the 'missing' column."""
    confusion = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    confusion[:, num_classes] = np.bincount(gt[gt != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
    return confusion


def confusions_from_masks(gt_masks, pred_masks, num_classes: int) -> np.ndarray:
    """(F, K, K + 1) confusions of paired masks; a `None` prediction counts as missing."""
    frames = [
        missing_frame_confusion(gt, num_classes) if pred is None else frame_confusion(gt, pred, num_classes)
        for gt, pred in zip(gt_masks, pred_masks, strict=True)
    ]
    return np.stack(frames) if frames else np.zeros((0, num_classes, num_classes + 1), dtype=np.int64)


def class_counts(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, ground-truth count, predicted count) per class of (..., K, K + 1) confusions."""
    k = confusion.shape[-2]
    true_positive = np.diagonal(confusion[..., :k], axis1=-2, axis2=-1)
    ground_truth = confusion.sum(axis=-1)
    # the missing column is nobody's prediction
    predicted = confusion[..., :k].sum(axis=-2)
    return true_positive, ground_truth, predicted


def divide_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (masked out or zero_division = 0)."""
    return np.divide(numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator > 0)
