"""Per-frame surgical activity classification metrics (docs/metrics.md).

The summary numbers come from one (A, A + 1) confusion matrix (`headline_from_confusion`):
rows are ground truth, columns predictions, and the last column counts samples without a
prediction (y_pred = -1), which are wrong: they add to FN of the true class and to no class's
FP. Confusions per sequence (`sequence_confusions`) are summable, which the sequence bootstrap
uses.

  accuracy           trace / all samples (missing ones included)
  balanced_accuracy  mean recall over the classes present in y_true (scikit-learn)
  macro_f1           mean F1 over the classes occurring in y_true or y_pred (the missing
                     marker is not a class), zero_division = 0 (scikit-learn's default labels)
  auroc_macro_ovr    mean over classes with a positive and a negative in y_true of the
                     one-vs-rest ROC AUC of that class's score (ties get average ranks)
  ece                expected calibration error over `ece_bins` equal-width bins on (0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlbench.metrics.confusion import class_counts, divide_or_zero

MISSING = -1

HEADLINE_KEYS = ("accuracy", "balanced_accuracy", "macro_f1")


def _per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    true_positive, support, predicted = class_counts(confusion)
    return {
        "precision": divide_or_zero(true_positive, predicted),
        "recall": divide_or_zero(true_positive, support),
        # 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted)
        "f1": divide_or_zero(2 * true_positive, support + predicted),
    }


def headline_from_confusion(confusion: np.ndarray) -> dict[str, float | None]:
    """accuracy, balanced_accuracy and macro_f1 of one (A, A + 1) confusion (counts may be float)."""
    true_positive, support, predicted = class_counts(confusion)
    total = confusion.sum()
    if total == 0:
        return dict.fromkeys(HEADLINE_KEYS)
    scores = _per_class_scores(confusion)
    present = support > 0
    return {
        "accuracy": float(true_positive.sum() / total),
        "balanced_accuracy": float(scores["recall"][present].mean()),
        "macro_f1": float(scores["f1"][present | (predicted > 0)].mean()),
    }


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> None:
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    if y_true.size and not (0 <= y_true.min() and y_true.max() < num_classes):
        raise ValueError(f"y_true values outside 0..{num_classes - 1}")
    if y_pred.size and not (MISSING <= y_pred.min() and y_pred.max() < num_classes):
        raise ValueError(f"y_pred values outside {MISSING}..{num_classes - 1}")


def _grouped_confusions(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, group: np.ndarray, groups: int):
    """(groups, A, A + 1) confusions; `group` gives each sample's group index."""
    columns = num_classes + 1
    predicted_column = np.where(y_pred == MISSING, num_classes, y_pred)
    cell = (group * num_classes + y_true) * columns + predicted_column
    counts = np.bincount(cell.astype(np.int64), minlength=groups * num_classes * columns)
    return counts.reshape(groups, num_classes, columns)


def activity_confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(A, A + 1) confusion; y_pred = -1 lands in the last ('missing') column."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_labels(y_true, y_pred, num_classes)
    return _grouped_confusions(y_true, y_pred, num_classes, np.zeros_like(y_true), 1)[0]


def sequence_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, sequences: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Sorted sequence names and their (S, A, A + 1) confusions (summable, for the bootstrap)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_labels(y_true, y_pred, num_classes)
    if len(sequences) != len(y_true):
        raise ValueError(f"{len(sequences)} sequence entries for {len(y_true)} samples")
    names, group = np.unique(np.asarray(sequences, dtype=str), return_inverse=True)
    return names.tolist(), _grouped_confusions(y_true, y_pred, num_classes, group.reshape(-1), len(names))


def _per_sequence_accuracy(names: list[str], confusions: np.ndarray) -> dict:
    correct = np.trace(confusions[:, :, :-1], axis1=1, axis2=2)
    accuracies = correct / confusions.sum(axis=(1, 2))
    return {
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std(ddof=1)) if len(names) >= 2 else None,
        "sequences": dict(zip(names, accuracies.tolist(), strict=True)),
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`; tied values share the mean of their ranks (scipy's rankdata).

    Written with numpy so that scoring does not import scipy.stats (about 0.7 s).
    """
    _, group, group_size = np.unique(values, return_inverse=True, return_counts=True)
    # a tie group ending at rank r with n members holds ranks r - n + 1 .. r, whose mean is r - (n - 1) / 2
    last_rank = np.cumsum(group_size)
    return (last_rank - (group_size - 1) / 2)[group.reshape(-1)]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic; needs a positive and a negative."""
    ranks = average_ranks(scores)
    positives = int(positive.sum())
    negatives = positive.size - positives
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auroc_macro_ovr(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    aucs = [
        roc_auc(scores[:, c], y_true == c)
        for c in range(scores.shape[1])
        if 0 < np.count_nonzero(y_true == c) < y_true.size
    ]
    return float(np.mean(aucs)) if aucs else None


def expected_calibration_error(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray, bins: int) -> float | None:
    """ECE with confidence = max score and correct = argmax is the truth and a prediction exists.

    Bins are (b/B, (b+1)/B]; a confidence of 0 (a missing prediction's all-zero row) falls in
    no bin but still counts in N, as in Guo et al. 2017.
    """
    if y_true.size == 0:
        return None
    confidence = scores.max(axis=1)
    correct = (scores.argmax(axis=1) == y_true) & (y_pred != MISSING)
    # searching the edges (not ceil(conf * B)) keeps 0.7 in (0.6, 0.7] despite 0.7 * 10 > 7
    bin_index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1), confidence, side="left") - 1
    binned = bin_index >= 0
    size = np.bincount(bin_index[binned], minlength=bins)
    accuracy_gap = np.bincount(bin_index[binned], weights=correct[binned] - confidence[binned], minlength=bins)
    # sum_b |B_b|/N * |acc_b - conf_b| = sum_b |sum over B_b of (correct - confidence)| / N
    return float(np.abs(accuracy_gap[size > 0]).sum() / y_true.size)


def _check_scores(scores: np.ndarray, samples: int, num_classes: int) -> None:
    if scores.shape != (samples, num_classes):
        raise ValueError(f"scores must have shape ({samples}, {num_classes}), got {scores.shape}")
    if scores.size and not (np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1):
        raise ValueError("scores must be probabilities in [0, 1]")


def _per_class(confusion: np.ndarray, activity_names: Sequence[str]) -> list[dict]:
    scores = _per_class_scores(confusion)
    _, support, _ = class_counts(confusion)
    return [
        {
            "id": class_id,
            "name": name,
            "precision": float(scores["precision"][class_id]),
            "recall": float(scores["recall"][class_id]),
            "f1": float(scores["f1"][class_id]),
            "support": int(support[class_id]),
        }
        for class_id, name in enumerate(activity_names)
    ]


def definitions(ece_bins: int) -> dict[str, str]:
    return {
        "missing_prediction": "y_pred = -1 (no prediction) is wrong: last confusion column, "
        "FN of the true class, FP of no class",
        "macro_average": "macro_f1 averages over classes occurring in y_true or y_pred; balanced_accuracy "
        "over classes in y_true; zero_division = 0",
        "per_class": "every activity in vocabulary order, zero_division = 0",
        "per_sequence_accuracy": "accuracy per sequence (video); mean and sample std (ddof=1) across sequences",
        "auroc_macro_ovr": "one-vs-rest ROC AUC per class with a positive and a negative in y_true "
        "(average ranks for ties), macro mean",
        "ece": f"{ece_bins} equal-width confidence bins on (0, 1]; confidence = max score; correct = argmax "
        "equals y_true and a prediction exists; sum_b |B_b|/N |acc_b - conf_b|; confidence 0 is in no bin",
    }


def activity_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    activity_names: Sequence[str],
    scores: np.ndarray | None = None,
    sequences: Sequence[str] | None = None,
    ece_bins: int = 15,
) -> dict:
    """All activity metrics of a split; y_pred = -1 marks a missing prediction."""
    if ece_bins < 1:
        raise ValueError(f"ece_bins must be >= 1, got {ece_bins}")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confusion = activity_confusion(y_true, y_pred, len(activity_names))
    headline = headline_from_confusion(confusion)
    null_reasons = {key: "no samples" for key, value in headline.items() if value is None}

    per_sequence = None
    if sequences is None:
        null_reasons["per_sequence_accuracy"] = "no sequences given"
    elif y_true.size == 0:
        null_reasons["per_sequence_accuracy"] = "no samples"
    else:
        per_sequence = _per_sequence_accuracy(*sequence_confusions(y_true, y_pred, len(activity_names), sequences))
        if per_sequence["std"] is None:
            null_reasons["per_sequence_accuracy.std"] = "needs at least 2 sequences"

    auroc = ece = None
    if scores is None:
        null_reasons["auroc_macro_ovr"] = null_reasons["ece"] = "no scores given"
    else:
        scores = np.asarray(scores, dtype=np.float64)
        _check_scores(scores, y_true.size, len(activity_names))
        auroc = auroc_macro_ovr(y_true, scores)
        ece = expected_calibration_error(y_true, y_pred, scores, ece_bins)
        if auroc is None:
            null_reasons["auroc_macro_ovr"] = "no class has both a positive and a negative sample in y_true"
        if ece is None:
            null_reasons["ece"] = "no samples"

    return {
        **headline,
        "per_class": _per_class(confusion, activity_names),
        "confusion_matrix": confusion.tolist(),
        "per_sequence_accuracy": per_sequence,
        "auroc_macro_ovr": auroc,
        "ece": ece,
        "null_reasons": null_reasons,
        "definitions": definitions(ece_bins),
    }
