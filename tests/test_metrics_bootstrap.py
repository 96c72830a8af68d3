"""Sequence bootstrap: equality with a brute-force loop, determinism, degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from mtlbench.metrics import bootstrap
from mtlbench.metrics.activity import headline_from_confusion, sequence_confusions
from mtlbench.metrics.bootstrap import cluster_bootstrap, multiplicities, sum_by_sequence
from mtlbench.metrics.segmentation import frame_statistics, headline_from_sums


def accuracy_only(sums: dict[str, np.ndarray]) -> dict[str, float | None]:
    return {"accuracy": headline_from_confusion(sums["confusion"])["accuracy"]}


def tiny_activity_case() -> dict[str, np.ndarray]:
    # v1: 3 of 4 right, v2: 1 of 2 right (one missing), v3: 0 of 3 right
    y_true = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 1, -1, 1, 0, 0])
    sequences = ["v1"] * 4 + ["v2"] * 2 + ["v3"] * 3
    names, confusions = sequence_confusions(y_true, y_pred, 2, sequences)
    assert names == ["v1", "v2", "v3"]
    return {"confusion": confusions}


def test_accuracy_interval_equals_brute_force_loop():
    per_sequence = tiny_activity_case()
    out = cluster_bootstrap(per_sequence, accuracy_only, resamples=200, seed=3)

    rng = np.random.default_rng(3)
    accuracies = []
    for _ in range(200):
        drawn = rng.integers(0, 3, size=3)
        confusion = sum(per_sequence["confusion"][i] for i in drawn)
        accuracies.append(np.trace(confusion[:, :2]) / confusion.sum())
    low, high = np.percentile(accuracies, [2.5, 97.5])
    assert out["intervals"]["accuracy"] == {
        "low": pytest.approx(low, abs=1e-15),
        "high": pytest.approx(high, abs=1e-15),
    }
    assert low < high  # the example is not degenerate
    assert (out["resamples"], out["seed"], out["confidence"], out["unit"]) == (200, 3, 0.95, "sequence")


def test_multiplicities_count_the_draws():
    counts = multiplicities(sequences=5, resamples=4, seed=1)
    draws = np.random.default_rng(1).integers(0, 5, size=(4, 5))
    assert counts.tolist() == [np.bincount(row, minlength=5).tolist() for row in draws]


def test_same_seed_same_intervals_other_seed_differs():
    per_sequence = tiny_activity_case()
    first = cluster_bootstrap(per_sequence, accuracy_only, resamples=300, seed=0)
    assert cluster_bootstrap(per_sequence, accuracy_only, resamples=300, seed=0) == first
    other = cluster_bootstrap(per_sequence, accuracy_only, resamples=300, seed=1)
    assert other["intervals"] != first["intervals"]


def test_chunking_does_not_change_the_result(monkeypatch):
    per_sequence = tiny_activity_case()
    whole = cluster_bootstrap(per_sequence, accuracy_only, resamples=100)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 7)  # one resample per chunk
    assert cluster_bootstrap(per_sequence, accuracy_only, resamples=100) == whole


def test_fewer_than_two_sequences_gives_no_interval():
    one = {"confusion": tiny_activity_case()["confusion"][:1]}
    out = cluster_bootstrap(one, accuracy_only)
    assert out["intervals"] == {"accuracy": None}
    assert out["null_reasons"] == {"accuracy": "needs at least 2 sequences"}


def test_identical_sequences_give_a_point_interval():
    confusion = np.array([[[3, 1, 0], [1, 5, 0]]] * 4)
    out = cluster_bootstrap({"confusion": confusion}, accuracy_only)
    assert out["intervals"]["accuracy"] == {"low": pytest.approx(0.8), "high": pytest.approx(0.8)}


def undefined_when_all_draws_are_sequence_0(sequences: int):
    # marker 1 for sequence 0 only: its sum equals the number of sequences iff all draws are 0
    per_sequence = {
        "all_zero": np.eye(1, sequences, dtype=np.int64).reshape(sequences),
        "value": np.arange(sequences, dtype=np.int64) + 1,
    }

    def statistic(sums):
        return {"score": None if sums["all_zero"] == sequences else float(sums["value"])}

    return per_sequence, statistic


def test_metric_undefined_in_many_resamples_gets_no_interval():
    # with 2 sequences, both draws are sequence 0 in about 1/4 of the resamples
    per_sequence, statistic = undefined_when_all_draws_are_sequence_0(2)
    out = cluster_bootstrap(per_sequence, statistic, resamples=400)
    assert out["intervals"]["score"] is None
    assert "resamples" in out["null_reasons"]["score"]


def test_metric_undefined_in_few_resamples_uses_the_defined_ones():
    # with 4 sequences all draws are sequence 0 in about 1 of 256 resamples
    per_sequence, statistic = undefined_when_all_draws_are_sequence_0(4)
    out = cluster_bootstrap(per_sequence, statistic, resamples=1000, seed=5)
    counts = multiplicities(4, 1000, 5)
    defined = counts[:, 0] != 4
    assert 0 < np.count_nonzero(~defined) < 50
    values = counts[defined] @ per_sequence["value"]
    low, high = np.percentile(values, [2.5, 97.5])
    assert out["intervals"]["score"] == {"low": low, "high": high}


def test_segmentation_bootstrap_from_frames():
    tool_good = [[4, 0, 0], [0, 4, 0]]
    tool_bad = [[4, 0, 0], [4, 0, 0]]
    frames = np.array([tool_good, tool_good, tool_bad, tool_good])
    names, per_sequence = sum_by_sequence(frame_statistics(frames, background=0), ["b", "a", "b", "c"])
    assert names == ["a", "b", "c"]
    assert per_sequence["confusion"][1].tolist() == [[8, 0, 0], [4, 4, 0]]
    assert per_sequence["challenge_frames"].tolist() == [1, 2, 1]
    out = cluster_bootstrap(per_sequence, lambda sums: headline_from_sums(sums, background=0), resamples=200)
    assert set(out["intervals"]) == {
        "miou",
        "miou_foreground",
        "mdice",
        "pixel_accuracy",
        "challenge_iou",
        "isi_iou",
        "mciou",
    }
    # challenge IoU per frame is 1 or 0: a and c have one good frame each, b one good and one bad.
    # Drawing a, b, c n_a, n_b, n_c times gives (n_a + n_b + n_c) / (n_a + 2 n_b + n_c).
    values = [
        (n_a + n_b + n_c) / (n_a + 2 * n_b + n_c)
        for n_a, n_b, n_c in (np.bincount(row, minlength=3) for row in np.random.default_rng(0).integers(0, 3, size=(200, 3)))
    ]
    low, high = np.percentile(values, [2.5, 97.5])
    assert (low, high) == (0.5, 1.0)
    assert out["intervals"]["challenge_iou"] == {"low": low, "high": high}
