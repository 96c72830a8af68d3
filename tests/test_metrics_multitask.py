"""Multi-task deltas: hand-computed delta_m / delta_p, missing metrics, zero baselines."""

from __future__ import annotations

import pytest

from mtlbench.metrics.multitask import multitask_deltas

ACTIVITY_BASELINE = {"activity": {"accuracy": 0.75, "macro_f1": 0.50}}
SEGMENTATION_BASELINE = {"segmentation": {"miou": 0.55, "pixel_accuracy": 0.90}}
ENDOARSS = {"activity": "classification", "segmentation": "segmentation"}


def test_delta_m_and_delta_p_by_hand():
    results = {"activity": {"accuracy": 0.80, "macro_f1": 0.60}, "segmentation": {"miou": 0.50, "pixel_accuracy": None}}
    out = multitask_deltas(results, [ACTIVITY_BASELINE, SEGMENTATION_BASELINE], ENDOARSS)
    # accuracy 100 * 0.05 / 0.75 = 20/3; macro_f1 100 * 0.10 / 0.50 = 20; miou 100 * -0.05 / 0.55 = -100/11
    accuracy, macro_f1, miou = 20 / 3, 20.0, -100 / 11
    assert out["delta_m"] == pytest.approx((accuracy + macro_f1 + miou) / 3)  # 5.8586
    assert out["delta_p"] == pytest.approx(((accuracy + macro_f1) / 2 + miou) / 2)  # 2.1212
    assert [(r["task"], r["metric"]) for r in out["metrics"]] == [
        ("activity", "accuracy"), ("activity", "macro_f1"), ("segmentation", "miou"), ("segmentation", "pixel_accuracy")
    ]
    assert [r["relative_change_percent"] for r in out["metrics"]] == pytest.approx([accuracy, macro_f1, miou, None])
    assert out["null_reasons"] == {"segmentation.pixel_accuracy": "not in the results"}
    assert "delta_m" in out["variant"] and "delta_p" in out["variant"]


def test_first_baseline_with_the_metric_wins():
    joint = {"activity": {"accuracy": 0.5, "macro_f1": None}, "segmentation": {"miou": 0.5}}
    results = {"activity": {"accuracy": 0.6, "macro_f1": 0.6}}
    out = multitask_deltas(results, [joint, ACTIVITY_BASELINE], ENDOARSS)
    rows = {r["metric"]: r for r in out["metrics"]}
    assert rows["accuracy"]["baseline"] == 0.5  # from the first baseline
    assert rows["macro_f1"]["baseline"] == 0.50  # None there, so the second one's
    # activity only: accuracy +20%, macro_f1 +20%
    assert out["delta_m"] == pytest.approx(20.0) and out["delta_p"] == pytest.approx(20.0)
    assert out["null_reasons"]["segmentation.miou"] == "not in the results"
    assert out["null_reasons"]["segmentation.pixel_accuracy"] == "not in the results"


def test_zero_baseline_is_dropped_with_a_reason():
    baseline = {"activity": {"accuracy": 0.5, "macro_f1": 0.0}}
    out = multitask_deltas({"activity": {"accuracy": 0.4, "macro_f1": 0.3}}, [baseline], ENDOARSS)
    assert out["delta_m"] == pytest.approx(-20.0) and out["delta_p"] == pytest.approx(-20.0)
    assert out["null_reasons"]["activity.macro_f1"] == "baseline is 0.0: the relative change needs a baseline above 0"


def test_a_negative_baseline_is_dropped_not_sign_flipped():
    kinds = {"report": "text"}
    # cosine -0.2 -> 0.1 is an improvement; 100 (0.1 - -0.2) / -0.2 would report -150%
    out = multitask_deltas({"report": {"bleu_2": 0.3, "cosine_similarity": 0.1}}, [{"report": {"bleu_2": 0.2, "cosine_similarity": -0.2}}], kinds)
    assert out["null_reasons"]["report.cosine_similarity"] == "baseline is -0.2: the relative change needs a baseline above 0"
    assert out["delta_m"] == pytest.approx(50.0) and out["delta_p"] == pytest.approx(50.0)


def test_no_metric_in_common():
    out = multitask_deltas({"activity": {"accuracy": 0.8}}, [SEGMENTATION_BASELINE], ENDOARSS)
    assert out["delta_m"] is None and out["delta_p"] is None
    assert {"delta_m", "delta_p", "activity.accuracy", "segmentation.miou"} <= set(out["null_reasons"])
    assert out["null_reasons"]["activity.accuracy"] == "no baseline has this metric"
    assert multitask_deltas({}, [], ENDOARSS)["delta_m"] is None


def test_every_task_type_brings_its_metrics_in_the_dataset_task_order():
    kinds = {"landmarks": "multilabel", "report": "text"}
    results = {"landmarks": {"micro_f1": 0.6, "macro_f1": 0.4}, "report": {"bleu_2": 0.3, "rouge_l": 0.5, "cosine_similarity": 0.8}}
    baseline = {"landmarks": {"micro_f1": 0.5, "macro_f1": 0.5}, "report": {"bleu_2": 0.2, "rouge_l": 0.5, "cosine_similarity": 0.64}}
    out = multitask_deltas(results, [baseline], kinds)
    # landmarks +20, -20; report +50, 0, +25
    assert [(r["task"], r["metric"], r["relative_change_percent"]) for r in out["metrics"]] == [
        ("landmarks", "micro_f1", pytest.approx(20.0)), ("landmarks", "macro_f1", pytest.approx(-20.0)),
        ("report", "bleu_2", pytest.approx(50.0)), ("report", "rouge_l", 0.0), ("report", "cosine_similarity", pytest.approx(25.0)),
    ]
    assert out["delta_m"] == pytest.approx(75 / 5) and out["delta_p"] == pytest.approx((0 + 25) / 2)
