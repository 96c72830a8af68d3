"""Multi-task deltas: hand-computed delta_m / delta_p, missing metrics, zero baselines."""

from __future__ import annotations

import pytest

from mtlbench.metrics.multitask import DELTA_METRICS, multitask_deltas

ACTIVITY_BASELINE = {"activity": {"accuracy": 0.75, "macro_f1": 0.50}}
SEGMENTATION_BASELINE = {"segmentation": {"miou": 0.55, "pixel_accuracy": 0.90}}


def test_delta_m_and_delta_p_by_hand():
    results = {"activity": {"accuracy": 0.80, "macro_f1": 0.60}, "segmentation": {"miou": 0.50, "pixel_accuracy": None}}
    out = multitask_deltas(results, [ACTIVITY_BASELINE, SEGMENTATION_BASELINE])
    # accuracy 100 * 0.05 / 0.75 = 20/3; macro_f1 100 * 0.10 / 0.50 = 20; miou 100 * -0.05 / 0.55 = -100/11
    accuracy, macro_f1, miou = 20 / 3, 20.0, -100 / 11
    assert out["delta_m"] == pytest.approx((accuracy + macro_f1 + miou) / 3)  # 5.8586
    assert out["delta_p"] == pytest.approx(((accuracy + macro_f1) / 2 + miou) / 2)  # 2.1212
    assert [(r["task"], r["metric"]) for r in out["metrics"]] == [
        (task, metric) for task, metrics in DELTA_METRICS.items() for metric in metrics
    ]
    assert [r["relative_change_percent"] for r in out["metrics"]] == pytest.approx([accuracy, macro_f1, miou, None])
    assert out["null_reasons"] == {"segmentation.pixel_accuracy": "not in the results"}
    assert "delta_m" in out["variant"] and "delta_p" in out["variant"]


def test_first_baseline_with_the_metric_wins():
    joint = {"activity": {"accuracy": 0.5, "macro_f1": None}, "segmentation": {"miou": 0.5}}
    results = {"activity": {"accuracy": 0.6, "macro_f1": 0.6}}
    out = multitask_deltas(results, [joint, ACTIVITY_BASELINE])
    rows = {r["metric"]: r for r in out["metrics"]}
    assert rows["accuracy"]["baseline"] == 0.5  # from the first baseline
    assert rows["macro_f1"]["baseline"] == 0.50  # None there, so the second one's
    # activity only: accuracy +20%, macro_f1 +20%
    assert out["delta_m"] == pytest.approx(20.0) and out["delta_p"] == pytest.approx(20.0)
    assert out["null_reasons"]["segmentation.miou"] == "not in the results"
    assert out["null_reasons"]["segmentation.pixel_accuracy"] == "not in the results"


def test_zero_baseline_is_dropped_with_a_reason():
    baseline = {"activity": {"accuracy": 0.5, "macro_f1": 0.0}}
    out = multitask_deltas({"activity": {"accuracy": 0.4, "macro_f1": 0.3}}, [baseline])
    assert out["delta_m"] == pytest.approx(-20.0) and out["delta_p"] == pytest.approx(-20.0)
    assert "baseline is 0" in out["null_reasons"]["activity.macro_f1"]


def test_no_metric_in_common():
    out = multitask_deltas({"activity": {"accuracy": 0.8}}, [SEGMENTATION_BASELINE])
    assert out["delta_m"] is None and out["delta_p"] is None
    assert {"delta_m", "delta_p", "activity.accuracy", "segmentation.miou"} <= set(out["null_reasons"])
    assert out["null_reasons"]["activity.accuracy"] == "no baseline has this metric"
    assert multitask_deltas({}, [])["delta_m"] is None
