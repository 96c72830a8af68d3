"""Robustness metrics: hand-computed mPC / rPC / CE / mCE / relative CE, nulls with reasons, report and plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from mtlbench.evaluation.robustness_plot import robustness_plot
from mtlbench.evaluation.robustness_report import print_robustness, robustness_table
from mtlbench.metrics.activity import activity_metrics
from mtlbench.metrics.robustness import (
    ROBUSTNESS_METRICS,
    clean_from_results,
    condition_metrics,
    robustness_summary,
)
from mtlbench.metrics.segmentation import segmentation_metrics

ACCURACY = "activity.accuracy"


def conditions_with(values: dict[tuple[str, int], float | None], metric: str = ACCURACY) -> dict:
    """per_condition with `metric` set and the other robustness metrics not scored."""
    return {key: {**dict.fromkeys(ROBUSTNESS_METRICS), metric: value} for key, value in values.items()}


def clean_with(value: float | None, metric: str = ACCURACY) -> dict:
    return {**dict.fromkeys(ROBUSTNESS_METRICS), metric: value}


# 2 corruptions x 2 severities. Errors E = 1 - P:
#   model      noise 0.8, 0.6 (E 0.2, 0.4)   blur 0.7, 0.5 (E 0.3, 0.5)   clean 0.9  (E 0.1)
#   reference  noise 0.7, 0.5 (E 0.3, 0.5)   blur 0.8, 0.6 (E 0.2, 0.4)   clean 0.95 (E 0.05)
MODEL = {("noise", 1): 0.8, ("noise", 2): 0.6, ("blur", 1): 0.7, ("blur", 2): 0.5}
REFERENCE = {("noise", 1): 0.7, ("noise", 2): 0.5, ("blur", 1): 0.8, ("blur", 2): 0.6}


def reference_summary(values: dict = REFERENCE, clean: float | None = 0.95) -> dict:
    return robustness_summary(conditions_with(values), clean_with(clean))


def test_mpc_rpc_ce_mce_relative_ce_by_hand():
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary(), "ResNet-50 HPS")
    assert out["corruptions"] == ["blur", "noise"] and out["severities"] == [1, 2]
    assert [(row["corruption"], row["severity"], row[ACCURACY]) for row in out["table"]] == [
        ("blur", 1, 0.7), ("blur", 2, 0.5), ("noise", 1, 0.8), ("noise", 2, 0.6)
    ]
    # mPC = (0.8 + 0.6 + 0.7 + 0.5) / 4 = 0.65; rPC = 0.65 / 0.9 = 0.7222
    assert out["mpc"][ACCURACY] == pytest.approx(0.65)
    assert out["rpc"][ACCURACY] == pytest.approx(0.65 / 0.9)
    # per corruption: noise (0.8 + 0.6) / 2 = 0.7, blur (0.7 + 0.5) / 2 = 0.6
    assert out["per_corruption"]["noise"][ACCURACY] == pytest.approx(0.7)
    assert out["per_corruption"]["blur"][ACCURACY] == pytest.approx(0.6)
    # CE_noise = (0.2 + 0.4) / (0.3 + 0.5) = 0.75; CE_blur = (0.3 + 0.5) / (0.2 + 0.4) = 4/3
    assert out["ce"][ACCURACY] == pytest.approx({"blur": 4 / 3, "noise": 0.75})
    # mCE = (0.75 + 4/3) / 2 = 1.0417
    assert out["mce"][ACCURACY] == pytest.approx((0.75 + 4 / 3) / 2)
    # relative CE_noise = ((0.2 - 0.1) + (0.4 - 0.1)) / ((0.3 - 0.05) + (0.5 - 0.05)) = 0.4 / 0.7 = 4/7
    # relative CE_blur  = ((0.3 - 0.1) + (0.5 - 0.1)) / ((0.2 - 0.05) + (0.4 - 0.05)) = 0.6 / 0.5 = 1.2
    assert out["relative_ce"][ACCURACY] == pytest.approx({"blur": 1.2, "noise": 4 / 7})
    # relative mCE = (4/7 + 1.2) / 2 = 0.8857
    assert out["relative_mce"][ACCURACY] == pytest.approx((4 / 7 + 1.2) / 2)
    assert out["reference"] == "ResNet-50 HPS"
    assert out["clean"][ACCURACY] == 0.9 and out["clean_source"] == "values given by the caller"
    assert not any(key.startswith(f"{name}.{ACCURACY}") for key in out["null_reasons"] for name in ("mpc", "rpc", "ce", "mce"))


def test_unscored_metrics_are_null_with_reasons():
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary(), "ref")
    for metric in ("activity.macro_f1", "segmentation.miou"):
        assert out["mpc"][metric] is None and out["rpc"][metric] is None and out["mce"][metric] is None
        assert "task not scored" in out["null_reasons"][f"mpc.{metric}"]
        assert out["null_reasons"][f"rpc.{metric}"] == "no clean value (P_clean)"
        assert out["ce"][metric] == {"blur": None, "noise": None}
        assert out["null_reasons"][f"ce.{metric}.noise"] == "no value at severity 1, 2"


def test_missing_reference_conditions():
    reference = reference_summary({key: value for key, value in REFERENCE.items() if key != ("blur", 2)})
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference, "ref")
    assert out["ce"][ACCURACY]["noise"] == pytest.approx(0.75)
    assert out["ce"][ACCURACY]["blur"] is None
    assert out["null_reasons"][f"ce.{ACCURACY}.blur"] == "the reference has no value at severity 2"
    assert out["mce"][ACCURACY] is None
    assert out["null_reasons"][f"mce.{ACCURACY}"] == "undefined for corruption(s): blur"
    assert out["relative_ce"][ACCURACY]["blur"] is None and out["relative_mce"][ACCURACY] is None
    # a corruption the reference never saw
    out = robustness_summary(conditions_with({**MODEL, ("fog", 1): 0.4}), clean_with(0.9), reference_summary(), "ref")
    assert out["ce"][ACCURACY]["fog"] is None and out["mce"][ACCURACY] is None
    assert out["null_reasons"][f"ce.{ACCURACY}.fog"] == "the reference has no value at severity 1"
    assert out["null_reasons"][f"mce.{ACCURACY}"] == "undefined for corruption(s): fog"


def test_zero_denominators():
    # the reference is perfect on noise (E^ref = 0 at both severities): CE_noise = 0.6 / 0 is undefined
    perfect_on_noise = {**REFERENCE, ("noise", 1): 1.0, ("noise", 2): 1.0}
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary(perfect_on_noise), "ref")
    assert out["ce"][ACCURACY]["noise"] is None and out["ce"][ACCURACY]["blur"] == pytest.approx(4 / 3)
    assert out["null_reasons"][f"ce.{ACCURACY}.noise"].startswith("denominator is 0")
    assert out["mce"][ACCURACY] is None
    # relative: reference blur 0.7, 0.9 around its clean 0.8: (0.3 - 0.2) + (0.1 - 0.2) = 0, which in
    # floating point is 1.1e-16, not 0; the denominator must still count as 0
    balanced_blur = {**REFERENCE, ("blur", 1): 0.7, ("blur", 2): 0.9}
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary(balanced_blur, clean=0.8), "ref")
    assert out["relative_ce"][ACCURACY]["blur"] is None
    assert "error minus its clean error" in out["null_reasons"][f"relative_ce.{ACCURACY}.blur"]
    assert out["relative_mce"][ACCURACY] is None
    # CE itself is fine there: (0.3 + 0.5) / (0.3 + 0.1) = 2
    assert out["ce"][ACCURACY]["blur"] == pytest.approx(2.0)
    # P_clean = 0: rPC undefined
    out = robustness_summary(conditions_with(MODEL), clean_with(0.0))
    assert out["rpc"][ACCURACY] is None and out["null_reasons"][f"rpc.{ACCURACY}"] == "P_clean is 0"


def test_clean_none():
    out = robustness_summary(conditions_with(MODEL), None, reference_summary(), "ref")
    assert out["clean"] is None and out["clean_source"] == "none" and "clean" in out["null_reasons"]
    assert out["mpc"][ACCURACY] == pytest.approx(0.65)
    assert out["rpc"][ACCURACY] is None
    assert out["ce"][ACCURACY]["noise"] == pytest.approx(0.75)  # CE needs no clean value
    assert out["relative_ce"][ACCURACY] == {"blur": None, "noise": None} and out["relative_mce"][ACCURACY] is None
    assert out["null_reasons"][f"relative_ce.{ACCURACY}"] == "no clean value for this model"
    # the reference without a clean value
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary(clean=None), "ref")
    assert out["relative_mce"][ACCURACY] is None
    assert out["null_reasons"][f"relative_mce.{ACCURACY}"] == "no clean value for the reference"


def test_clean_frames_of_the_set_give_p_clean_and_stay_out_of_the_table():
    out = robustness_summary(conditions_with({**MODEL, ("clean", 0): 0.9}), None)
    assert out["clean"][ACCURACY] == 0.9 and "'clean' frames" in out["clean_source"]
    assert out["corruptions"] == ["blur", "noise"] and out["severities"] == [1, 2] and len(out["table"]) == 4
    assert out["rpc"][ACCURACY] == pytest.approx(0.65 / 0.9)
    # values given by the caller win
    out = robustness_summary(conditions_with({**MODEL, ("clean", 0): 0.9}), clean_with(0.8), clean_source="results.json")
    assert out["clean"][ACCURACY] == 0.8 and out["clean_source"] == "results.json"


def test_no_reference_and_unnamed_reference():
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9))
    assert out["ce"] is None and out["mce"] is None and out["relative_ce"] is None and out["relative_mce"] is None
    assert out["reference"] is None and out["null_reasons"]["mce"] == "no reference model given"
    with pytest.raises(ValueError, match="reference_name"):
        robustness_summary(conditions_with(MODEL), clean_with(0.9), reference_summary())


def test_output_is_json_without_tuple_keys_or_nan():
    reference = json.loads(json.dumps(reference_summary()))  # as read back from a file
    out = robustness_summary(conditions_with(MODEL), clean_with(0.9), reference, "ref")
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert out["mce"][ACCURACY] == pytest.approx((0.75 + 4 / 3) / 2)
    assert set(out) >= {"metrics", "corruptions", "severities", "table", "clean", "clean_source", "mpc", "rpc",
                        "per_corruption", "ce", "mce", "relative_ce", "relative_mce", "reference", "null_reasons", "definitions"}


def test_clean_from_results():
    results = {"activity": {"accuracy": 0.9, "macro_f1": 0.8}, "segmentation": {"scored": False, "miou": None}}
    assert clean_from_results(results) == {"activity.accuracy": 0.9, "activity.macro_f1": 0.8, "segmentation.miou": None}
    assert clean_from_results({}) == dict.fromkeys(ROBUSTNESS_METRICS)


def test_condition_metrics_equal_the_metrics_on_each_subset():
    rng = np.random.default_rng(0)
    frames, activities, classes = 30, 4, 3
    conditions = [("noise", 1), ("noise", 2), ("blur", 1), ("clean", 0)]
    frame_conditions = [conditions[i] for i in rng.integers(0, len(conditions), frames)]
    truth = rng.integers(0, activities, frames)
    predicted = rng.integers(-1, activities, frames)
    confusions = rng.integers(0, 20, (frames, classes, classes + 1))
    activity_names, class_names = [f"a{i}" for i in range(activities)], [f"c{i}" for i in range(classes)]

    out = condition_metrics(frame_conditions, truth, predicted, activity_names, confusions, class_names)
    assert list(out) == sorted(set(frame_conditions))
    for condition, values in out.items():
        subset = np.array([c == condition for c in frame_conditions])
        activity = activity_metrics(truth[subset], predicted[subset], activity_names)
        segmentation = segmentation_metrics(confusions[subset], class_names)
        assert values == {
            "activity.accuracy": activity["accuracy"],
            "activity.macro_f1": activity["macro_f1"],
            "segmentation.miou": segmentation["miou"],
        }

    # one task only; severities as read from samples.csv (strings) become ints
    out = condition_metrics([(c, str(s)) for c, s in frame_conditions], None, None, None, confusions, class_names)
    assert ("noise", 1) in out and all(values["activity.accuracy"] is None for values in out.values())
    with pytest.raises(ValueError, match="frames"):
        condition_metrics(frame_conditions[:-1], truth, predicted, activity_names, None, None)


def test_table_print_and_plot(tmp_path):
    incomplete = {key: value for key, value in MODEL.items() if key != ("blur", 2)}
    out = robustness_summary(conditions_with({**incomplete, ("noise", 3): None}), clean_with(0.9), reference_summary(), "ref")
    table = robustness_table(out)
    assert table.row_count == 2 + 3  # accuracy only: two corruptions, then mPC, clean and rPC rows
    console = Console(record=True, width=200)
    print_robustness(out, console)
    text = console.export_text()
    assert "noise" in text and "rPC = mPC / P_clean" in text and "mpc.activity.accuracy" in text

    results = {"dataset": {"name": "tiny-gen", "version": "1.0", "split": "test"}, "submission": {"meta": {"method": "m"}}, "robustness": out}
    path = robustness_plot(results, tmp_path / "robustness.png")
    data = path.read_bytes()
    assert path.exists() and data.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in data and not list(tmp_path.glob(".*partial*"))
    # the same summary gives the same bytes
    assert robustness_plot(results, tmp_path / "again.png").read_bytes() == data
