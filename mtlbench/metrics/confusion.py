"""Per-frame pixel confusion matrices, computed fast enough to keep up with PNG decoding.

A confusion matrix here has shape (K, K + 1): rows are ground-truth classes, columns predicted
classes, and the extra last column counts pixels that have no prediction at all (a missing
mask scored under --allow-missing). Ground-truth pixels equal to IGNORE_INDEX are left out.

Masks are piecewise constant, so instead of histogramming every pixel the joint label
gt * K + pred is run-length encoded with one vectorised comparison, and only the runs are
counted: on 1280x1024 masks this costs about a tenth of decoding the two PNGs
(benchmarks/evaluate_rate.py).
"""

from __future__ import annotations

import numpy as np

from mtlbench.taxonomies import IGNORE_INDEX

# With K * K <= 256 - K the joint label gt * K + pred of valid pixels fits in uint8 below the
# wrap-around images of the ignored ground truth (255 * K mod 256 = 256 - K and up).
_MAX_CLASSES_UINT8 = 15


class LabelRangeError(ValueError):
    """A mask holds a value outside its valid range; `in_prediction` says which mask."""

    def __init__(self, message: str, in_prediction: bool):
        super().__init__(message)
        self.in_prediction = in_prediction


def _run_counts(joint: np.ndarray, bins: int) -> np.ndarray:
    flat = joint.reshape(-1)
    boundaries = np.flatnonzero(flat[1:] != flat[:-1])
    starts = np.empty(boundaries.size + 1, dtype=np.intp)
    starts[0] = 0
    starts[1:] = boundaries + 1
    lengths = np.diff(starts, append=flat.size)
    # float64 weights count exactly up to 2**53 pixels
    return np.bincount(flat[starts], weights=lengths, minlength=bins).astype(np.int64)


def frame_confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K + 1) int64 confusion of one frame; `gt` and `pred` are (H, W) uint8 of equal shape.

    Raises LabelRangeError when `pred` holds a value >= K or `gt` a value >= K other than 255.
    Both masks are range-checked before the joint label is formed, so no out-of-range value can
    alias a valid or an ignored one through the uint8 wrap-around.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: {gt.shape} vs {pred.shape}")
    k = num_classes
    top = int(pred.max()) if pred.size else 0
    if top >= k:
        raise LabelRangeError(f"predicted class value {top} is out of range 0..{k - 1}", in_prediction=True)
    if np.count_nonzero(gt >= k) != np.count_nonzero(gt == IGNORE_INDEX):
        invalid = int(gt[(gt >= k) & (gt != IGNORE_INDEX)][0])
        raise LabelRangeError(
            f"ground-truth value {invalid} is outside 0..{k - 1} and is not the ignore value {IGNORE_INDEX}", in_prediction=False
        )
    confusion = np.zeros((k, k + 1), dtype=np.int64)
    if k <= _MAX_CLASSES_UINT8:
        joint = gt * np.uint8(k)
        joint += pred
        counts = _run_counts(joint, 256)
    else:
        counts = _run_counts(gt.astype(np.uint16) * np.uint16(k) + pred, IGNORE_INDEX * k + k)
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
