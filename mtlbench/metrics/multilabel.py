"""Multi-label classification metrics: which labels (landmarks, instruments) each frame shows.

y_true and y_pred are (N, L) indicator matrices (bool or 0/1): row n is the label set of sample
n. Every bootstrapped number comes from per-sample statistics that can be summed over any set
of samples (`multilabel_statistics`) and one function that turns the sums into metrics
(`multilabel_headline_from_sums`), so point estimates and the sequence bootstrap
(mtlbench.metrics.bootstrap) share one code path.

TP_l, FP_l and FN_l count the samples where label l is true and predicted, predicted only,
true only. A label's precision TP / (TP + FP), recall TP / (TP + FN) and F1 2 TP / (2 TP + FP +
FN) are 0 where the denominator is 0 (zero_division = 0, scikit-learn's value). Under label
skew (labels that never occur, labels that are always there) the averaging conventions below
change the numbers, so they are fixed here and equal scikit-learn's where scikit-learn defines
the number:

  micro_*          precision, recall, F1 of TP, FP, FN summed over labels and samples
  macro_*          mean of the per-label scores over the labels occurring in y_true or y_pred;
                   a label absent from both is excluded (like an absent class in mIoU) rather
                   than counted as 0; scikit-learn with labels=<those labels>, zero_division=0
  weighted_*       the same labels, each weighted by its support (true count); if none has
                   support (labels only predicted) every per-label score is 0 and so is the
                   average, as scikit-learn's fallback to the unweighted mean gives
  samples_*        each sample's precision, recall, F1 of its two label sets, averaged over
                   samples, with scikit-learn's zero_division = 1 (f1_score(average="samples",
                   zero_division=1)): no true and no predicted label P = R = F1 = 1 (correctly
                   empty); true labels but none predicted P = 1 (undefined), R = 0, F1 = 0;
                   predicted labels but none true P = 0, R = 1 (undefined), F1 = 0
  subset_accuracy  fraction of samples whose predicted label set equals the true set
  hamming_loss     fraction of wrong label bits, (FP + FN) / (N L); lower is better
  mean_average_precision  with scores only, not bootstrapped: mean over the labels with a
                   positive in y_true of the step-wise, non-interpolated average precision
                   sum_k (R_k - R_(k-1)) P_k over the distinct score thresholds (tied scores
                   are one threshold), scikit-learn's average_precision_score

Nothing is NaN: with no samples every metric is None; with samples but no label occurring in
y_true or y_pred, micro, macro and weighted are None (0 / 0 for every label; scikit-learn
would report 0 for micro), while the samples average, subset_accuracy and hamming_loss are
defined (the empty predictions are right). Each None has a reason in `null_reasons`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlbench.metrics.confusion import divide_or_zero

HEADLINE_KEYS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")

_SCORES = ("precision", "recall", "f1")
_LABEL_AVERAGES = ("micro", "macro", "weighted")
# everything multilabel_headline_from_sums returns, in its order
_BOOTSTRAPPED_KEYS = (
    *(f"{average}_{score}" for average in (*_LABEL_AVERAGES, "samples") for score in _SCORES),
    "subset_accuracy",
    "hamming_loss",
)

_NO_LABEL_OCCURS = "no label occurs in y_true or y_pred: every label's scores are 0 / 0"


def _as_indicator(name: str, values) -> np.ndarray:
    """`values` as a bool (N, L) matrix; refuses anything but 0 and 1 so no score is silently thresholded."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, labels), got shape {array.shape}")
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a numeric or bool 0/1 indicator matrix, got dtype {array.dtype}")
    invalid = (array != 0) & (array != 1)
    if invalid.any():
        raise ValueError(f"{name} must hold only 0 and 1, found {array[invalid][0].item()!r}")
    return array.astype(bool)


def _indicator_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = _as_indicator("y_true", y_true), _as_indicator("y_pred", y_pred)
    if truth.shape != predicted.shape:
        raise ValueError(f"y_true and y_pred must have equal shapes, got {truth.shape} and {predicted.shape}")
    if truth.shape[1] == 0:
        raise ValueError("y_true and y_pred need at least one label column")
    return truth, predicted


def _divide_or_one(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 1 where the denominator is 0 (the samples average's zero_division = 1)."""
    return np.divide(numerator, denominator, out=np.ones(np.shape(numerator)), where=denominator > 0)


def _statistics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    samples, labels = truth.shape
    true_positive = truth & predicted
    false_positive = predicted & ~truth
    false_negative = truth & ~predicted
    hits = np.count_nonzero(true_positive, axis=1)
    true_count = np.count_nonzero(truth, axis=1)
    predicted_count = np.count_nonzero(predicted, axis=1)
    wrong_bits = true_count + predicted_count - 2 * hits
    return {
        "tp": true_positive.astype(np.int64),
        "fp": false_positive.astype(np.int64),
        "fn": false_negative.astype(np.int64),
        "sample_precision": _divide_or_one(hits, predicted_count),
        "sample_recall": _divide_or_one(hits, true_count),
        "sample_f1": _divide_or_one(2 * hits, true_count + predicted_count),
        "exact": (wrong_bits == 0).astype(np.int64),
        "wrong_bits": wrong_bits.astype(np.int64),
        "samples": np.ones(samples, dtype=np.int64),
        "labels": np.full(samples, labels, dtype=np.int64),
    }


def multilabel_statistics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample statistics with a leading sample axis; summing rows over any subset is valid.

    tp, fp, fn (N, L) int64: each label's outcome in the sample; sample_precision,
    sample_recall, sample_f1 (N,) float64: the sample's scores (zero_division = 1); exact (N,)
    1 where the label sets are equal; wrong_bits (N,) FP + FN of the sample; samples (N,) ones;
    labels (N,) L, so that its sum is the number of label bits.
    """
    return _statistics(*_indicator_pair(y_true, y_pred))


def _per_label_scores(true_positive: np.ndarray, false_positive: np.ndarray, false_negative: np.ndarray) -> dict:
    return {
        "precision": divide_or_zero(true_positive, true_positive + false_positive),
        "recall": divide_or_zero(true_positive, true_positive + false_negative),
        "f1": divide_or_zero(2 * true_positive, 2 * true_positive + false_positive + false_negative),
    }


def _label_averages(true_positive: np.ndarray, false_positive: np.ndarray, false_negative: np.ndarray) -> dict:
    """micro, macro and weighted precision, recall and F1 of per-label counts (L,)."""
    occurs = (true_positive + false_positive + false_negative) > 0
    if not occurs.any():
        return {f"{average}_{score}": None for average in _LABEL_AVERAGES for score in _SCORES}
    micro = _per_label_scores(*np.stack([true_positive, false_positive, false_negative]).sum(axis=1, keepdims=True))
    per_label = _per_label_scores(true_positive[occurs], false_positive[occurs], false_negative[occurs])
    support = (true_positive + false_negative)[occurs]
    total_support = support.sum()

    def weighted(values: np.ndarray) -> float:
        # without support every occurring label has TP = 0, so all its scores are 0
        return float(support @ values / total_support) if total_support else 0.0

    return {
        **{f"micro_{score}": float(micro[score][0]) for score in _SCORES},
        **{f"macro_{score}": float(per_label[score].mean()) for score in _SCORES},
        **{f"weighted_{score}": weighted(per_label[score]) for score in _SCORES},
    }


def multilabel_headline_from_sums(sums: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Every bootstrapped metric from `multilabel_statistics` summed over a set of samples (sample axis gone)."""
    samples = sums["samples"]
    if samples == 0:
        return dict.fromkeys(_BOOTSTRAPPED_KEYS)
    return {
        **_label_averages(sums["tp"], sums["fp"], sums["fn"]),
        **{f"samples_{score}": float(sums[f"sample_{score}"] / samples) for score in _SCORES},
        "subset_accuracy": float(sums["exact"] / samples),
        "hamming_loss": float(sums["wrong_bits"] / sums["labels"]),
    }


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise AP sum_k (R_k - R_(k-1)) P_k over distinct thresholds, as scikit-learn; needs a positive.

    Tied scores form one threshold, so the order of tied samples cannot change the result.
    """
    order = np.argsort(-scores, kind="stable")
    ranked_scores = scores[order]
    # the last rank of each run of equal scores is where that threshold's counts are read
    threshold_end = np.append(np.flatnonzero(np.diff(ranked_scores)), ranked_scores.size - 1)
    true_positives = np.cumsum(positive[order])[threshold_end]
    precision = true_positives / (threshold_end + 1)
    recall_gain = np.diff(true_positives, prepend=0) / true_positives[-1]
    return float(recall_gain @ precision)


def _check_scores(scores: np.ndarray, shape: tuple[int, int]) -> None:
    if scores.shape != shape:
        raise ValueError(f"scores must have shape {shape}, got {scores.shape}")
    if scores.size and not (np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1):
        raise ValueError("scores must be finite and in [0, 1]")


def _average_precisions(truth: np.ndarray, scores: np.ndarray) -> list[float | None]:
    """AP of every label with a positive in y_true, None for the others."""
    return [
        average_precision(truth[:, label], scores[:, label]) if truth[:, label].any() else None
        for label in range(truth.shape[1])
    ]


def _per_class(sums: dict[str, np.ndarray], label_names: Sequence[str]) -> list[dict]:
    scores = _per_label_scores(sums["tp"], sums["fp"], sums["fn"])
    support, predicted = sums["tp"] + sums["fn"], sums["tp"] + sums["fp"]
    return [
        {
            "id": label,
            "name": name,
            "precision": float(scores["precision"][label]),
            "recall": float(scores["recall"][label]),
            "f1": float(scores["f1"][label]),
            "support": int(support[label]),
            "predicted": int(predicted[label]),
        }
        for label, name in enumerate(label_names)
    ]


def definitions() -> dict[str, str]:
    return {
        "per_class": "every label in vocabulary order; precision, recall, F1 with zero_division = 0; "
        "support = samples where the label is true, predicted = samples where it is predicted",
        "micro": "micro_precision, micro_recall, micro_f1 from TP, FP, FN summed over all labels and samples "
        "(zero_division = 0); null when no label occurs in y_true or y_pred",
        "macro": "mean of the per-label scores over the labels occurring in y_true or y_pred (labels absent "
        "from both are excluded), zero_division = 0",
        "weighted": "the macro labels' scores weighted by support; 0 when none of them has support",
        "samples": "per-sample precision, recall, F1 averaged over samples with zero_division = 1: an empty "
        "true and empty predicted set scores 1, true labels with none predicted P = 1, R = 0, F1 = 0, "
        "predicted labels with none true P = 0, R = 1, F1 = 0",
        "subset_accuracy": "fraction of samples whose predicted label set equals the true set",
        "hamming_loss": "fraction of wrong label bits, (FP + FN) / (samples x labels); lower is better",
        "mean_average_precision": "with scores: mean over the labels with a positive in y_true of the "
        "step-wise, non-interpolated average precision (tied scores are one threshold); labels without "
        "a positive are excluded, listed in null_reasons; not bootstrapped",
    }


def multilabel_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    label_names: Sequence[str],
    scores: np.ndarray | None = None,
) -> dict:
    """All multi-label metrics of a split; `scores` (N, L) in [0, 1] adds average precision."""
    truth, predicted = _indicator_pair(y_true, y_pred)
    return multilabel_section(truth, _statistics(truth, predicted), label_names, scores)


def multilabel_section(
    y_true: np.ndarray,
    statistics: dict[str, np.ndarray],
    label_names: Sequence[str],
    scores: np.ndarray | None = None,
) -> dict:
    """`multilabel_metrics` from the per-sample `multilabel_statistics` of the split, so that a
    caller that also bootstraps them computes them once; `y_true` is needed for average precision."""
    truth = _as_indicator("y_true", y_true)
    samples, labels = truth.shape
    if len(label_names) != labels:
        raise ValueError(f"{len(label_names)} label names for {labels} label columns")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        _check_scores(scores, truth.shape)

    sums = {key: values.sum(axis=0) for key, values in statistics.items()}
    headline = multilabel_headline_from_sums(sums)
    reason = "no samples" if samples == 0 else _NO_LABEL_OCCURS
    null_reasons = {key: reason for key, value in headline.items() if value is None}
    per_class = _per_class(sums, label_names)

    mean_ap = None
    if scores is None:
        null_reasons["mean_average_precision"] = "no scores given"
    else:
        for row, value in zip(per_class, _average_precisions(truth, scores), strict=True):
            row["average_precision"] = value
            if value is None:
                null_reasons[f"per_class.{row['name']}.average_precision"] = (
                    "no positive sample in y_true: excluded from mean_average_precision"
                )
        defined = [row["average_precision"] for row in per_class if row["average_precision"] is not None]
        if defined:
            mean_ap = float(np.mean(defined))
        else:
            null_reasons["mean_average_precision"] = "no label has a positive sample in y_true"

    return {
        **headline,
        "per_class": per_class,
        "mean_average_precision": mean_ap,
        "samples": samples,
        "null_reasons": null_reasons,
        "definitions": definitions(),
    }
