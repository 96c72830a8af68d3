"""Activity metrics against scikit-learn on random data and against hand-computed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from mtlbench.metrics.activity import (
    activity_metrics,
    headline_from_confusion,
    sequence_confusions,
)

NAMES = ["idle", "cut", "grasp", "clip", "coagulate", "suction"]


def random_case(seed: int, samples: int = 300):
    """Labels from classes 0..4 (class 5 never true), predictions with ~10% missing (-1)."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, samples)
    scores = rng.dirichlet(np.ones(len(NAMES)), samples)
    y_pred = np.where(rng.random(samples) < 0.5, y_true, scores.argmax(axis=1))
    missing = rng.random(samples) < 0.1
    y_pred[missing] = -1
    scores[missing] = 0
    return y_true, y_pred, scores


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_summary_scores_match_sklearn(seed):
    y_true, y_pred, scores = random_case(seed)
    m = activity_metrics(y_true, y_pred, NAMES, scores)
    # -1 never equals a true label, so scikit-learn scores it as wrong too
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    labels = sorted(set(y_true) | set(y_pred) - {-1})
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_and_confusion_match_sklearn(seed):
    y_true, y_pred, _ = random_case(seed)
    m = activity_metrics(y_true, y_pred, NAMES)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(len(NAMES)), zero_division=0
    )
    rows = m["per_class"]
    assert [r["name"] for r in rows] == NAMES
    assert [r["precision"] for r in rows] == pytest.approx(precision)
    assert [r["recall"] for r in rows] == pytest.approx(recall)
    assert [r["f1"] for r in rows] == pytest.approx(f1)
    assert [r["support"] for r in rows] == support.tolist()
    missing_as_last = np.where(y_pred == -1, len(NAMES), y_pred)
    expected = confusion_matrix(y_true, missing_as_last, labels=range(len(NAMES) + 1))[: len(NAMES)]
    assert m["confusion_matrix"] == expected.tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_auroc_matches_sklearn_per_class_with_ties(seed):
    y_true, y_pred, scores = random_case(seed)
    scores = np.round(scores, 1)  # many ties
    m = activity_metrics(y_true, y_pred, NAMES, scores)
    # class 5 has no positive and is left out
    per_class = [roc_auc_score(y_true == c, scores[:, c]) for c in range(5)]
    assert m["auroc_macro_ovr"] == pytest.approx(np.mean(per_class))


def test_auroc_matches_sklearn_ovr_macro_when_all_classes_present():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, 200)
    scores = rng.dirichlet(np.ones(4), 200)
    m = activity_metrics(y_true, scores.argmax(axis=1), NAMES[:4], scores)
    assert m["auroc_macro_ovr"] == pytest.approx(roc_auc_score(y_true, scores, multi_class="ovr", average="macro"))


def test_ece_by_hand():
    y_true = np.array([0, 0, 0, 1])
    y_pred = np.array([0, 1, 0, -1])
    scores = np.array(
        [
            [0.9, 0.05, 0.05],  # confidence 0.9, correct
            [0.2, 0.8, 0.0],  # confidence 0.8, wrong
            [0.5, 0.25, 0.25],  # confidence 0.5 (upper edge of the first bin), correct
            [0.0, 0.0, 0.0],  # missing prediction: confidence 0, in no bin, counts in N
        ]
    )
    m = activity_metrics(y_true, y_pred, NAMES[:3], scores, ece_bins=2)
    # bin (0, 0.5]: sample 3, |1 - 0.5| * 1/4 = 0.125
    # bin (0.5, 1]: samples 1, 2, |0.5 - 0.85| * 2/4 = 0.175
    assert m["ece"] == pytest.approx(0.125 + 0.175)


def test_ece_bin_edges_hold_decimal_confidences():
    # 0.7 * 10 > 7 in floating point; 0.7 must still land in (0.6, 0.7] with 10 bins
    scores = np.array([[0.7, 0.3], [0.65, 0.35]])
    m = activity_metrics(np.array([0, 1]), np.array([0, 0]), ["a", "b"], scores, ece_bins=10)
    # together in (0.6, 0.7]: accuracy 0.5, confidence 0.675
    assert m["ece"] == pytest.approx(0.175)


def test_ece_scores_a_missing_prediction_as_wrong_whatever_its_scores():
    scores = np.array([[0.9, 0.1], [0.9, 0.1]])
    m = activity_metrics(np.array([0, 0]), np.array([0, -1]), ["a", "b"], scores, ece_bins=10)
    # both in (0.8, 0.9]: accuracy 1/2, confidence 0.9
    assert m["ece"] == pytest.approx(0.4)


def test_single_class_ground_truth():
    y_true = np.array([0, 0, 0, 0])
    y_pred = np.array([0, 0, 1, -1])
    scores = np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.3, 0.7, 0], [0, 0, 0]])
    m = activity_metrics(y_true, y_pred, NAMES[:3], scores)
    assert m["accuracy"] == 0.5 and m["balanced_accuracy"] == 0.5
    # class 0: TP 2, support 4, predicted 2 -> F1 4/6; class 1: F1 0; class 2 occurs nowhere
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["auroc_macro_ovr"] is None and "auroc_macro_ovr" in m["null_reasons"]
    assert m["per_class"][2] == {"id": 2, "name": "grasp", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_sequence_accuracy_by_hand():
    y_true = np.array([0, 1, 0, 0, 1])
    y_pred = np.array([0, 0, 0, -1, 1])
    m = activity_metrics(y_true, y_pred, ["a", "b"], sequences=["v1", "v1", "v2", "v2", "v2"])
    # v1: 1/2, v2: 2/3
    per_sequence = m["per_sequence_accuracy"]
    assert per_sequence["sequences"] == pytest.approx({"v1": 0.5, "v2": 2 / 3})
    assert per_sequence["mean"] == pytest.approx(7 / 12)
    assert per_sequence["std"] == pytest.approx((2 / 3 - 1 / 2) / np.sqrt(2))  # ddof = 1

    one = activity_metrics(y_true, y_pred, ["a", "b"], sequences=["v1"] * 5)
    assert one["per_sequence_accuracy"]["std"] is None and "per_sequence_accuracy.std" in one["null_reasons"]
    assert activity_metrics(y_true, y_pred, ["a", "b"])["per_sequence_accuracy"] is None


def test_sequence_confusions_sum_to_the_whole():
    y_true, y_pred, _ = random_case(5, samples=60)
    sequences = [f"v{i % 4}" for i in range(60)]
    names, confusions = sequence_confusions(y_true, y_pred, len(NAMES), sequences)
    assert names == ["v0", "v1", "v2", "v3"] and confusions.shape == (4, 6, 7)
    whole = activity_metrics(y_true, y_pred, NAMES)
    assert confusions.sum(axis=0).tolist() == whole["confusion_matrix"]
    third = np.arange(60) % 4 == 2
    # a missing prediction (-1) is the extra last column: sklearn's label 6 of 0..6, without its row
    expected = confusion_matrix(y_true[third], np.where(y_pred[third] == -1, 6, y_pred[third]), labels=range(7))[:6]
    assert confusions[2].tolist() == expected.tolist()
    labels = sorted((set(y_true) | set(y_pred)) - {-1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the -1 it never saw in y_true
        expected_headline = {
            "accuracy": accuracy_score(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        }
    assert headline_from_confusion(confusions.sum(axis=0)) == pytest.approx(expected_headline)


def test_without_scores_or_samples_nothing_is_nan():
    m = activity_metrics(np.array([], int), np.array([], int), ["a", "b"])
    assert m["accuracy"] is None and m["macro_f1"] is None and m["ece"] is None
    assert {"accuracy", "auroc_macro_ovr", "ece"} <= set(m["null_reasons"])


def test_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="y_true values outside 0..1"):
        activity_metrics(np.array([0, 2]), np.array([0, 0]), ["a", "b"])
    with pytest.raises(ValueError, match="y_pred values outside -1..1"):
        activity_metrics(np.array([0, 1]), np.array([0, -2]), ["a", "b"])
    with pytest.raises(ValueError, match="scores must have shape \\(2, 2\\)"):
        activity_metrics(np.array([0, 1]), np.array([0, 1]), ["a", "b"], scores=np.ones((2, 3)))
