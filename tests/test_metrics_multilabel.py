"""Multi-label metrics against scikit-learn on skewed random data and against hand-computed cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, hamming_loss, precision_recall_fscore_support

from mtlbench.metrics.bootstrap import cluster_bootstrap, sum_by_sequence
from mtlbench.metrics.multilabel import (
    HEADLINE_KEYS,
    multilabel_headline_from_sums,
    multilabel_metrics,
    multilabel_statistics,
)

NAMES = ["never", "always", "rare", "common", "frequent", "sparse", "predicted_only"]
# chance of each label being true: "never" and "predicted_only" are never true, "always" always is
SKEWED = np.array([0.0, 1.0, 0.02, 0.3, 0.6, 0.1, 0.0])
# mostly empty frames, so the samples average meets its zero-division cases often
SPARSE = np.array([0.0, 0.05, 0.01, 0.1, 0.02, 0.0, 0.0])
AVERAGED = [
    f"{average}_{score}" for average in ("micro", "macro", "weighted", "samples") for score in ("precision", "recall", "f1")
]


def random_case(seed: int, frequency: np.ndarray, samples: int = 400):
    """Truth drawn per label with `frequency`, predictions with ~15% of bits flipped, tied scores.

    Label 0 ("never") is absent from truth and predictions; label 6 ("predicted_only") is
    never true but sometimes predicted.
    """
    rng = np.random.default_rng(seed)
    y_true = (rng.random((samples, len(frequency))) < frequency).astype(np.int64)
    y_pred = y_true ^ (rng.random(y_true.shape) < 0.15)
    y_pred[:, 0] = 0
    scores = np.round(np.clip(0.4 * y_true + 0.6 * rng.random(y_true.shape), 0, 1), 1)  # ties
    return y_true, y_pred, scores


def sklearn_headline(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The conventions of mtlbench.metrics.multilabel, spelled with scikit-learn's own functions."""
    present = np.flatnonzero(y_true.any(axis=0) | y_pred.any(axis=0)).tolist()
    expected = {}
    for average, options in [
        ("micro", {"zero_division": 0}),
        ("macro", {"labels": present, "zero_division": 0}),
        ("weighted", {"labels": present, "zero_division": 0}),
        ("samples", {"zero_division": 1}),
    ]:
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, **options)
        expected |= {f"{average}_precision": precision, f"{average}_recall": recall, f"{average}_f1": f1}
    expected["subset_accuracy"] = accuracy_score(y_true, y_pred)
    expected["hamming_loss"] = hamming_loss(y_true, y_pred)
    return expected


def assert_no_nan(value) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert_no_nan(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_nan(item)
    elif isinstance(value, float):
        assert not math.isnan(value)


@pytest.mark.parametrize("frequency", [SKEWED, SPARSE], ids=["skewed", "sparse"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_headline_matches_sklearn(seed, frequency):
    y_true, y_pred, _ = random_case(seed, frequency)
    m = multilabel_metrics(y_true, y_pred, NAMES)
    assert {key: m[key] for key in AVERAGED + ["subset_accuracy", "hamming_loss"]} == pytest.approx(
        sklearn_headline(y_true, y_pred), rel=1e-12, abs=1e-15
    )
    assert all(type(m[key]) is float for key in HEADLINE_KEYS)
    assert m["samples"] == 400


@pytest.mark.parametrize("frequency", [SKEWED, SPARSE], ids=["skewed", "sparse"])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_and_average_precision_match_sklearn(seed, frequency):
    y_true, y_pred, scores = random_case(seed, frequency)
    m = multilabel_metrics(y_true, y_pred, NAMES, scores)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    rows = m["per_class"]
    assert [(r["id"], r["name"]) for r in rows] == list(enumerate(NAMES))
    assert [r["precision"] for r in rows] == pytest.approx(precision, rel=1e-12)
    assert [r["recall"] for r in rows] == pytest.approx(recall, rel=1e-12)
    assert [r["f1"] for r in rows] == pytest.approx(f1, rel=1e-12)
    assert [r["support"] for r in rows] == support.tolist()
    assert [r["predicted"] for r in rows] == y_pred.sum(axis=0).tolist()

    with_positive = [label for label in range(len(NAMES)) if y_true[:, label].any()]
    expected_ap = {label: average_precision_score(y_true[:, label], scores[:, label]) for label in with_positive}
    assert {label: rows[label]["average_precision"] for label in with_positive} == pytest.approx(expected_ap, rel=1e-12)
    assert m["mean_average_precision"] == pytest.approx(np.mean(list(expected_ap.values())), rel=1e-12)
    for label in set(range(len(NAMES))) - set(with_positive):
        assert rows[label]["average_precision"] is None
        assert f"per_class.{NAMES[label]}.average_precision" in m["null_reasons"]
    assert m["null_reasons"]["per_class.never.average_precision"].startswith("no positive sample in y_true")


def test_absent_label_is_excluded_from_macro_but_a_predicted_only_label_counts():
    y_true, y_pred, _ = random_case(3, SKEWED)
    m = multilabel_metrics(y_true, y_pred, NAMES)
    assert not y_true[:, 6].any() and y_pred[:, 6].any()  # the case is what it claims
    # "predicted_only" (F1 0) is one of the 6 averaged labels; "never" is not averaged at all
    per_label_f1 = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)[2]
    assert per_label_f1[0] == 0 and per_label_f1[6] == 0
    assert m["macro_f1"] == pytest.approx(per_label_f1[1:].sum() / 6, rel=1e-12)


def test_by_hand():
    # labels a b c d e
    y_true = np.array(
        [
            [1, 1, 0, 0, 0],  # exact
            [1, 0, 0, 0, 0],  # c predicted too: FP of c
            [0, 0, 0, 0, 0],  # empty and empty: exact
            [0, 1, 0, 0, 0],  # nothing predicted: FN of b
            [0, 0, 0, 0, 0],  # d predicted, nothing true: FP of d
        ]
    )
    y_pred = np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 0, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0],
        ]
    )
    m = multilabel_metrics(y_true, y_pred, list("abcde"))
    # a: TP 2; b: TP 1, FN 1; c: FP 1; d: FP 1; e occurs nowhere
    # micro: TP 3, FP 2, FN 1
    assert m["micro_precision"] == pytest.approx(3 / 5)
    assert m["micro_recall"] == pytest.approx(3 / 4)
    assert m["micro_f1"] == pytest.approx(6 / 9)
    # per label P, R, F1: a 1, 1, 1; b 1, 1/2, 2/3; c and d 0, 0 (0/0 -> 0), 0; e excluded
    assert m["macro_precision"] == pytest.approx((1 + 1) / 4)
    assert m["macro_recall"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3) / 4)
    # supports a 2, b 2, c 0, d 0
    assert m["weighted_precision"] == pytest.approx((2 * 1 + 2 * 1) / 4)
    assert m["weighted_recall"] == pytest.approx((2 * 1 + 2 * 1 / 2) / 4)
    assert m["weighted_f1"] == pytest.approx((2 * 1 + 2 * 2 / 3) / 4)
    # per sample P, R, F1: (1, 1, 1), (1/2, 1, 2/3), (1, 1, 1) empty-empty,
    # (1, 0, 0) nothing predicted, (0, 1, 0) nothing true
    assert m["samples_precision"] == pytest.approx((1 + 1 / 2 + 1 + 1 + 0) / 5)
    assert m["samples_recall"] == pytest.approx((1 + 1 + 1 + 0 + 1) / 5)
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 1 + 0 + 0) / 5)
    # samples 0 and 2 exact; 3 wrong bits of 25
    assert m["subset_accuracy"] == pytest.approx(2 / 5)
    assert m["hamming_loss"] == pytest.approx(3 / 25)
    b_row = {"id": 1, "name": "b", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2, "predicted": 1}
    assert m["per_class"][1] == b_row
    e_row = {"id": 4, "name": "e", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    assert m["per_class"][4] == e_row
    assert m["mean_average_precision"] is None and m["null_reasons"] == {"mean_average_precision": "no scores given"}
    assert "average_precision" not in m["per_class"][0]


def test_average_precision_by_hand_treats_tied_scores_as_one_threshold():
    y_true = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.5], [0.8, 0.5], [0.8, 0.5], [0.1, 0.5]])
    m = multilabel_metrics(y_true, y_true, ["a", "b"], scores)
    # label a: threshold 0.9 -> 1 TP of 1 predicted (P 1, R 1/2); threshold 0.8 (a negative and a
    # positive tied) -> 2 TP of 3 (P 2/3, R 1); AP = 1/2 * 1 + 1/2 * 2/3. Ranking the tied
    # positive first would give 1.
    assert m["per_class"][0]["average_precision"] == pytest.approx(5 / 6)
    assert m["per_class"][1]["average_precision"] is None  # b has no positive
    assert m["mean_average_precision"] == pytest.approx(5 / 6)
    assert set(m["null_reasons"]) == {"per_class.b.average_precision"}


@pytest.mark.parametrize(
    ("true_row", "predicted_row", "expected"),
    [
        ([0, 0, 0], [0, 0, 0], (1.0, 1.0, 1.0)),  # correctly empty: perfect
        ([1, 1, 0], [0, 0, 0], (1.0, 0.0, 0.0)),  # nothing predicted: precision undefined -> 1
        ([0, 0, 0], [0, 1, 0], (0.0, 1.0, 0.0)),  # nothing true: recall undefined -> 1
        ([1, 1, 0], [0, 1, 1], (0.5, 0.5, 0.5)),  # one hit of two each way
    ],
)
def test_samples_average_zero_division_cases(true_row, predicted_row, expected):
    y_true, y_pred = np.array([true_row]), np.array([predicted_row])
    assert precision_recall_fscore_support(y_true, y_pred, average="samples", zero_division=1)[:3] == pytest.approx(expected)
    m = multilabel_metrics(y_true, y_pred, ["a", "b", "c"])
    assert (m["samples_precision"], m["samples_recall"], m["samples_f1"]) == pytest.approx(expected)


def test_single_sample_matches_sklearn():
    y_true, y_pred = np.array([[1, 0, 1, 0]]), np.array([[1, 1, 0, 0]])
    m = multilabel_metrics(y_true, y_pred, list("abcd"))
    assert {key: m[key] for key in sklearn_headline(y_true, y_pred)} == pytest.approx(sklearn_headline(y_true, y_pred))


def test_labels_only_predicted_give_weighted_zero_like_sklearn():
    y_true = np.zeros((3, 3), dtype=int)
    y_pred = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0]])
    m = multilabel_metrics(y_true, y_pred, list("abc"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the all-zero weights
        expected = sklearn_headline(y_true, y_pred)
    assert {key: m[key] for key in expected} == pytest.approx(expected)
    assert m["weighted_f1"] == 0.0 and m["micro_precision"] == 0.0 and m["samples_f1"] == pytest.approx(1 / 3)


def test_all_empty_rows_leave_label_averages_null_but_samples_defined():
    y_true = y_pred = np.zeros((4, 3), dtype=bool)
    m = multilabel_metrics(y_true, y_pred, list("abc"), scores=np.full((4, 3), 0.2))
    label_keys = [key for key in AVERAGED if not key.startswith("samples")]
    assert all(m[key] is None for key in label_keys)
    assert all("no label occurs" in m["null_reasons"][key] for key in label_keys)
    # empty predictions of empty frames are right (scikit-learn with zero_division = 1 agrees)
    expected = precision_recall_fscore_support(y_true, y_pred, average="samples", zero_division=1)[:3]
    assert (m["samples_precision"], m["samples_recall"], m["samples_f1"]) == pytest.approx(expected) == (1, 1, 1)
    assert (m["subset_accuracy"], m["hamming_loss"]) == (1.0, 0.0)
    assert m["mean_average_precision"] is None and "mean_average_precision" in m["null_reasons"]
    assert_no_nan(m)


def test_zero_samples_give_none_with_reasons():
    m = multilabel_metrics(np.zeros((0, 3)), np.zeros((0, 3)), list("abc"), scores=np.zeros((0, 3)))
    assert all(m[key] is None for key in AVERAGED + ["subset_accuracy", "hamming_loss", "mean_average_precision"])
    assert all(m["null_reasons"][key] == "no samples" for key in HEADLINE_KEYS)
    assert "mean_average_precision" in m["null_reasons"]
    assert m["samples"] == 0 and [row["support"] for row in m["per_class"]] == [0, 0, 0]
    assert_no_nan(m)


@pytest.mark.parametrize("frequency", [SKEWED, SPARSE], ids=["skewed", "sparse"])
def test_summed_statistics_of_a_subset_match_sklearn_on_that_subset(frequency):
    y_true, y_pred, _ = random_case(4, frequency)
    statistics = multilabel_statistics(y_true, y_pred)
    assert statistics["tp"].shape == (400, 7) and statistics["sample_f1"].shape == (400,)
    subset = np.random.default_rng(9).random(400) < 0.3
    sums = {key: values[subset].sum(axis=0) for key, values in statistics.items()}
    assert multilabel_headline_from_sums(sums) == pytest.approx(sklearn_headline(y_true[subset], y_pred[subset]), rel=1e-12)


def test_statistics_by_hand():
    statistics = multilabel_statistics(np.array([[1, 1, 0], [0, 0, 0]]), np.array([[1, 0, 1], [0, 0, 0]]))
    assert statistics["tp"].tolist() == [[1, 0, 0], [0, 0, 0]]
    assert statistics["fp"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert statistics["fn"].tolist() == [[0, 1, 0], [0, 0, 0]]
    # row 0: 1 hit of 2 predicted and 2 true; row 1: empty and empty
    assert statistics["sample_precision"].tolist() == [0.5, 1.0]
    assert statistics["sample_recall"].tolist() == [0.5, 1.0]
    assert statistics["sample_f1"].tolist() == [0.5, 1.0]
    assert statistics["exact"].tolist() == [0, 1]
    assert statistics["wrong_bits"].tolist() == [2, 0]
    assert statistics["samples"].tolist() == [1, 1] and statistics["labels"].tolist() == [3, 3]


def test_statistics_feed_the_sequence_bootstrap():
    y_true, y_pred, _ = random_case(5, SKEWED, samples=120)
    sequences = [f"v{i % 6}" for i in range(120)]
    _, per_sequence = sum_by_sequence(multilabel_statistics(y_true, y_pred), sequences)
    drawn = cluster_bootstrap(per_sequence, multilabel_headline_from_sums, resamples=200, seed=0)
    point = sklearn_headline(y_true, y_pred)
    assert set(drawn["intervals"]) == set(point) and drawn["null_reasons"] == {}
    for key in HEADLINE_KEYS:
        interval = drawn["intervals"][key]
        assert interval["low"] <= interval["high"]
        assert interval["low"] - 0.1 < point[key] < interval["high"] + 0.1


def test_rejects_invalid_inputs():
    ones = np.ones((2, 3), dtype=int)
    with pytest.raises(ValueError, match=r"y_true must be 2-D \(samples, labels\), got shape \(3,\)"):
        multilabel_metrics(np.ones(3), ones, list("abc"))
    with pytest.raises(ValueError, match=r"equal shapes, got \(2, 3\) and \(2, 2\)"):
        multilabel_metrics(ones, np.ones((2, 2)), list("abc"))
    with pytest.raises(ValueError, match="y_pred must hold only 0 and 1, found 2"):
        multilabel_metrics(ones, ones * 2, list("abc"))
    with pytest.raises(ValueError, match="y_true must hold only 0 and 1, found 0.5"):
        multilabel_statistics(ones * 0.5, ones)
    with pytest.raises(ValueError, match="y_true must hold only 0 and 1, found nan"):
        multilabel_statistics(np.full((2, 3), np.nan), ones)
    with pytest.raises(ValueError, match="numeric or bool 0/1 indicator matrix, got dtype <U1"):
        multilabel_statistics(np.full((2, 3), "1"), ones)
    with pytest.raises(ValueError, match="2 label names for 3 label columns"):
        multilabel_metrics(ones, ones, ["a", "b"])
    with pytest.raises(ValueError, match="at least one label column"):
        multilabel_metrics(np.ones((2, 0)), np.ones((2, 0)), [])
    with pytest.raises(ValueError, match=r"scores must have shape \(2, 3\), got \(2, 2\)"):
        multilabel_metrics(ones, ones, list("abc"), scores=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"scores must be finite and in \[0, 1\]"):
        multilabel_metrics(ones, ones, list("abc"), scores=np.full((2, 3), 1.5))
    with pytest.raises(ValueError, match=r"scores must be finite and in \[0, 1\]"):
        multilabel_metrics(ones, ones, list("abc"), scores=np.full((2, 3), np.nan))


def test_bool_and_int_inputs_agree():
    y_true, y_pred, scores = random_case(6, SPARSE, samples=50)
    as_int = multilabel_metrics(y_true, y_pred, NAMES, scores)
    assert multilabel_metrics(y_true.astype(bool), y_pred.astype(bool), NAMES, scores) == as_int
