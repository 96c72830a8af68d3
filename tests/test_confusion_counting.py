"""Per-frame confusions: run counting and the histogram give the same counts as scikit-learn,
on smooth, noisy and random masks, with ignored pixels, on both code widths (K <= 15: uint8)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from mtlbench.metrics import confusion
from mtlbench.metrics.confusion import LabelRangeError, frame_confusion
from mtlbench.taxonomies import IGNORE_INDEX

METHODS = ("auto", "runs", "histogram")


def smooth_mask(rng: np.random.Generator, shape: tuple[int, int], k: int) -> np.ndarray:
    """A few rectangles of random classes over class 0, like a label."""
    mask = np.zeros(shape, dtype=np.uint8)
    for _ in range(6):
        top, left = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[top : top + rng.integers(1, shape[0]), left : left + rng.integers(1, shape[1])] = rng.integers(0, k)
    return mask


def with_noise(mask: np.ndarray, rng: np.random.Generator, k: int, fraction: float) -> np.ndarray:
    noisy = mask.copy()
    flipped = rng.random(mask.shape) < fraction
    noisy[flipped] = rng.integers(0, k, size=int(flipped.sum()), dtype=np.uint8)
    return noisy


def sklearn_confusion(gt: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    evaluated = gt != IGNORE_INDEX
    counts = confusion_matrix(gt[evaluated], pred[evaluated], labels=list(range(k)))
    return np.column_stack([counts, np.zeros(k, dtype=np.int64)])  # no pixel lacks a prediction


# 15 is the most classes whose codes fit in uint8, 16 the fewest that need uint16; 63 x 77 pixels
# is not a multiple of 4, so the histogram's tail of fewer than 4 codes is counted too
@pytest.mark.parametrize("k", [2, 12, 15, 16, 40])
@pytest.mark.parametrize("noise", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("shape", [(64, 80), (63, 77)])
def test_every_method_equals_sklearn(k, noise, shape):
    rng = np.random.default_rng(k * 100 + int(noise * 10))
    gt = smooth_mask(rng, shape, k)
    gt[smooth_mask(rng, shape, 2) == 1] = IGNORE_INDEX
    pred = with_noise(smooth_mask(rng, shape, k), rng, k, noise)
    expected = sklearn_confusion(gt, pred, k)
    for method in METHODS:
        np.testing.assert_array_equal(frame_confusion(gt, pred, k, counting=method), expected, err_msg=method)


@pytest.mark.parametrize("k", [12, 20])
def test_full_size_noisy_prediction(k):
    """A 1280x1024 frame with 5% of its pixels flipped, as benchmarks/evaluate_rate.py makes them."""
    rng = np.random.default_rng(k)
    gt = np.repeat(np.repeat(rng.integers(0, k, size=(16, 20), dtype=np.uint8), 64, axis=0), 64, axis=1)
    gt[:100, :100] = IGNORE_INDEX
    pred = with_noise(np.roll(gt % k, 5, axis=1), rng, k, 0.05)
    expected = sklearn_confusion(gt, pred, k)
    for method in METHODS:
        np.testing.assert_array_equal(frame_confusion(gt, pred, k, counting=method), expected, err_msg=method)


def test_auto_counts_runs_of_smooth_masks_and_histograms_noisy_ones(monkeypatch):
    chosen = []

    def record_calls_of(name: str) -> None:
        method = getattr(confusion, name)

        def recorded(*args):
            chosen.append(name)
            return method(*args)

        monkeypatch.setattr(confusion, name, recorded)

    record_calls_of("_run_counts")
    record_calls_of("_histogram")
    rng = np.random.default_rng(0)
    # 6 rectangles per mask make at most 24 runs in a row of 1280 pixels: 1 run per 53 pixels or fewer
    gt, smooth = smooth_mask(rng, (64, 1280), 12), smooth_mask(rng, (64, 1280), 12)
    frame_confusion(gt, smooth, 12)
    frame_confusion(gt, with_noise(smooth, rng, 12, 0.05), 12)
    assert chosen == ["_run_counts", "_histogram"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [12, 16])
def test_out_of_range_values_are_refused_on_every_path(method, k):
    gt = np.zeros((4, 6), dtype=np.uint8)
    pred = np.zeros((4, 6), dtype=np.uint8)
    pred[1, 2] = k
    with pytest.raises(LabelRangeError, match=f"predicted class value {k} is out of range 0..{k - 1}") as caught:
        frame_confusion(gt, pred, k, counting=method)
    assert caught.value.in_prediction
    pred[1, 2] = 0
    gt[0, 0], gt[3, 5] = IGNORE_INDEX, 254  # the ignore value is fine, 254 is not
    with pytest.raises(LabelRangeError, match=f"ground-truth value 254 is outside 0..{k - 1}") as caught:
        frame_confusion(gt, pred, k, counting=method)
    assert not caught.value.in_prediction


def test_refuses_other_dtypes_and_unknown_methods():
    mask = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="masks must be uint8, got int64 and uint8"):
        frame_confusion(mask.astype(np.int64), mask, 2)
    with pytest.raises(ValueError, match="counting must be 'auto', 'runs' or 'histogram'"):
        frame_confusion(mask, mask, 2, counting="sorted")
