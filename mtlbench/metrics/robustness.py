"""Robustness on corrupted test sets: performance per corruption and severity (docs/metrics.md).

A condition is one (corruption c, severity s); P_{c,s} is a metric over that condition's frames,
computed by the ordinary activity / segmentation metric code. All metrics here are
higher-is-better, and the error of a metric is E = 1 - P.

  mPC             mean of P_{c,s} over the conditions present
  rPC             mPC / P_clean
  CE_c            sum_s E_{c,s} / sum_s E^ref_{c,s} against a named reference model
  mCE             mean over corruptions of CE_c
  relative CE_c   sum_s (E_{c,s} - E_clean) / sum_s (E^ref_{c,s} - E^ref_clean)
  relative mCE    mean over corruptions of relative CE_c

Ratios are fractions, not percent. Nothing is ever NaN: an undefined value is None and its
reason is in `null_reasons`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlbench.metrics.activity import activity_metrics
from mtlbench.metrics.segmentation import segmentation_metrics

ROBUSTNESS_METRICS = ("activity.accuracy", "activity.macro_f1", "segmentation.miou")

# The uncorrupted copies in a robustness dataset (samples.csv corruption "clean", severity 0).
CLEAN = "clean"
CLEAN_CONDITION = (CLEAN, 0)

# Relative CE subtracts clean errors; differences that cancel exactly can leave rounding residue
# instead of 0, which would turn an undefined ratio into a huge number.
ZERO_DENOMINATOR = 1e-12

DEFINITIONS = {
    "condition": f"one (corruption, severity); P_(c,s) is the metric over that condition's frames; the "
    f"uncorrupted copies (corruption '{CLEAN}', severity 0) are not a condition of the table",
    "clean": f"P_clean: the clean values given by the caller (e.g. the base test split's results.json), else "
    f"those of the '{CLEAN}' frames of the robustness set; clean_source says which",
    "error": "E = 1 - P (every robustness metric is higher-is-better)",
    "mpc": "mean corruption performance: mean of P_(c,s) over the (corruption, severity) conditions present; "
    "null if any of them is null",
    "rpc": "relative performance under corruption: mPC / P_clean",
    "per_corruption": "mean of P_(c,s) over the severities of corruption c",
    "ce": "corruption error CE_c = sum_s E_(c,s) / sum_s E^ref_(c,s) over the severities of c present here, "
    "against the named reference model; below 1 is more robust than the reference",
    "mce": "mean of CE_c over the corruptions; null unless every CE_c is defined",
    "relative_ce": "sum_s (E_(c,s) - E_clean) / sum_s (E^ref_(c,s) - E^ref_clean): the degradation from each "
    "model's own clean error, against the reference's",
    "relative_mce": "mean of relative CE_c over the corruptions; null unless every relative CE_c is defined",
    "units": "all ratios are fractions, not percent",
}


def _robustness_values(sections: dict) -> dict[str, float | None]:
    """The ROBUSTNESS_METRICS from task sections shaped like results.json ({"activity": {...}, ...})."""
    values = {}
    for metric in ROBUSTNESS_METRICS:
        task, key = metric.split(".", 1)
        values[metric] = (sections.get(task) or {}).get(key)
    return values


def clean_from_results(results: dict) -> dict[str, float | None]:
    """P_clean of each robustness metric from an mtlbench results.json dict (null where not scored)."""
    return _robustness_values(results)


def condition_metrics(
    conditions: Sequence[tuple[str, int]],
    truth: np.ndarray | None,
    predicted: np.ndarray | None,
    activity_names: Sequence[str] | None,
    confusions: np.ndarray | None,
    class_names: Sequence[str] | None,
    background: int | None = 0,
) -> dict[tuple[str, int], dict[str, float | None]]:
    """The ROBUSTNESS_METRICS of each condition's frames, sorted by (corruption, severity).

    conditions: (corruption, severity) of each of the F frames; truth / predicted: (F,) activity
    labels, predicted -1 = missing (both None when activity is not scored); confusions:
    (F, K, K + 1) segmentation frame confusions (None when segmentation is not scored). A metric
    of an unscored task is None.
    """
    if (truth is None) != (predicted is None):
        raise ValueError("truth and predicted must both be given or both be None")
    keys = [(str(corruption), int(severity)) for corruption, severity in conditions]
    for name, array in (("truth", truth), ("predicted", predicted), ("confusions", confusions)):
        if array is not None and len(array) != len(keys):
            raise ValueError(f"{name} has {len(array)} frames, conditions has {len(keys)}")
    frames_of: dict[tuple[str, int], list[int]] = {}
    for frame, key in enumerate(keys):
        frames_of.setdefault(key, []).append(frame)

    per_condition = {}
    for key in sorted(frames_of):
        frames = np.asarray(frames_of[key])
        sections = {}
        if truth is not None:
            sections["activity"] = activity_metrics(np.asarray(truth)[frames], np.asarray(predicted)[frames], activity_names)
        if confusions is not None:
            sections["segmentation"] = segmentation_metrics(np.asarray(confusions)[frames], class_names, background=background)
        per_condition[key] = _robustness_values(sections)
    return per_condition


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _severity_list(severities) -> str:
    return ", ".join(str(s) for s in severities)


def _clean_values(
    per_condition: dict, clean: dict | None, clean_source: str | None, null_reasons: dict
) -> tuple[dict | None, str]:
    """P_clean and where it came from: the caller's values, else the dataset's clean copies."""
    if clean is not None:
        return {metric: clean.get(metric) for metric in ROBUSTNESS_METRICS}, clean_source or "values given by the caller"
    if CLEAN_CONDITION in per_condition:
        clean_frames = per_condition[CLEAN_CONDITION]
        return {metric: clean_frames.get(metric) for metric in ROBUSTNESS_METRICS}, f"the '{CLEAN}' frames of the robustness set"
    null_reasons["clean"] = f"no clean results given and no '{CLEAN}' frames in the robustness set"
    return None, "none"


def _ratio_of_sums(
    numerators: dict[int, float | None], denominators: dict[int, float | None], what: str
) -> tuple[float | None, str | None]:
    """sum_s numerator / sum_s denominator over the severities of `numerators`, or (None, reason)."""
    missing = [s for s, value in numerators.items() if value is None]
    if missing:
        return None, f"no value at severity {_severity_list(missing)}"
    missing = [s for s in numerators if denominators.get(s) is None]
    if missing:
        return None, f"the reference has no value at severity {_severity_list(missing)}"
    denominator = sum(denominators[s] for s in numerators)
    if abs(denominator) < ZERO_DENOMINATOR:
        return None, f"denominator is 0: the reference's summed {what} over these severities is 0"
    return sum(numerators.values()) / denominator, None


def _mean_over_corruptions(per_corruption: dict[str, float | None]) -> tuple[float | None, str | None]:
    undefined = [corruption for corruption, value in per_corruption.items() if value is None]
    if not per_corruption:
        return None, "no corrupted conditions"
    if undefined:
        return None, f"undefined for corruption(s): {', '.join(undefined)}"
    return _mean(list(per_corruption.values())), None


def _by_corruption(values: dict[tuple[str, int], float | None]) -> dict[str, dict[int, float | None]]:
    grouped: dict[str, dict[int, float | None]] = {}
    for (corruption, severity), value in values.items():
        grouped.setdefault(corruption, {})[severity] = value
    return grouped


def _errors(grouped: dict[str, dict[int, float | None]], clean_error: float = 0.0) -> dict[str, dict[int, float | None]]:
    """E_(c,s) = 1 - P_(c,s), minus `clean_error` for the relative CE."""
    return {
        corruption: {s: None if value is None else 1.0 - value - clean_error for s, value in severities.items()}
        for corruption, severities in grouped.items()
    }


def _corruption_errors(
    errors: dict[str, dict[int, float | None]],
    reference_errors: dict[str, dict[int, float | None]],
    what: str,
    reason_keys: tuple[str, str],
    null_reasons: dict,
) -> tuple[dict[str, float | None], float | None]:
    """The CE-like ratio of each corruption and their mean; reasons under `reason_keys` (ratio, mean)."""
    ratio_key, mean_key = reason_keys
    ratios = {}
    for corruption, severities in errors.items():
        ratios[corruption], reason = _ratio_of_sums(severities, reference_errors.get(corruption, {}), what)
        if reason:
            null_reasons[f"{ratio_key}.{corruption}"] = reason
    mean, reason = _mean_over_corruptions(ratios)
    if reason:
        null_reasons[mean_key] = reason
    return ratios, mean


def _mean_of_all(values: dict[tuple[str, int], float | None]) -> tuple[float | None, str | None]:
    missing = [f"{c} severity {s}" for (c, s), value in values.items() if value is None]
    if not values:
        return None, "no corrupted conditions"
    if missing:
        return None, f"no value (task not scored or metric undefined) for: {', '.join(missing)}"
    return _mean(list(values.values())), None


def _relative(mpc: float | None, clean_value: float | None) -> tuple[float | None, str | None]:
    if clean_value is None:
        return None, "no clean value (P_clean)"
    if clean_value == 0:
        return None, "P_clean is 0"
    if mpc is None:
        return None, "mPC is undefined"
    return mpc / clean_value, None


def _reference_ce(
    metric: str, grouped: dict, clean_value: float | None, reference: dict, null_reasons: dict
) -> dict:
    """ce, mce, relative_ce and relative_mce of one metric against the reference summary."""
    reference_grouped = _by_corruption(
        {(row["corruption"], int(row["severity"])): row.get(metric) for row in reference["table"]}
    )
    out = {}
    out["ce"], out["mce"] = _corruption_errors(
        _errors(grouped), _errors(reference_grouped), "error", (f"ce.{metric}", f"mce.{metric}"), null_reasons
    )
    reference_clean = (reference.get("clean") or {}).get(metric)
    if clean_value is None or reference_clean is None:
        out["relative_ce"], out["relative_mce"] = dict.fromkeys(grouped), None
        reason = f"no clean value for {'this model' if clean_value is None else 'the reference'}"
        null_reasons[f"relative_ce.{metric}"] = null_reasons[f"relative_mce.{metric}"] = reason
    else:
        out["relative_ce"], out["relative_mce"] = _corruption_errors(
            _errors(grouped, 1.0 - clean_value),
            _errors(reference_grouped, 1.0 - reference_clean),
            "error minus its clean error",
            (f"relative_ce.{metric}", f"relative_mce.{metric}"),
            null_reasons,
        )
    return out


def _metric_summary(
    metric: str,
    values: dict[tuple[str, int], float | None],
    clean_value: float | None,
    reference: dict | None,
    null_reasons: dict,
) -> dict:
    """mPC, rPC, per-corruption means and (with a reference) CE, mCE, relative CE of one metric."""
    mpc, reason = _mean_of_all(values)
    if reason:
        null_reasons[f"mpc.{metric}"] = reason
    rpc, reason = _relative(mpc, clean_value)
    if reason:
        null_reasons[f"rpc.{metric}"] = reason
    grouped = _by_corruption(values)
    per_corruption = {}
    for corruption, severities in grouped.items():
        missing = [s for s, value in severities.items() if value is None]
        per_corruption[corruption] = None if missing else _mean(list(severities.values()))
        if missing:
            null_reasons[f"per_corruption.{corruption}.{metric}"] = f"no value at severity {_severity_list(missing)}"
    summary = {"mpc": mpc, "rpc": rpc, "per_corruption": per_corruption}
    if reference is not None:
        summary.update(_reference_ce(metric, grouped, clean_value, reference, null_reasons))
    return summary


def robustness_summary(
    per_condition: dict[tuple[str, int], dict[str, float | None]],
    clean: dict[str, float | None] | None,
    reference: dict | None = None,
    reference_name: str | None = None,
    *,
    clean_source: str | None = None,
) -> dict:
    """JSON-able robustness summary of `condition_metrics` output.

    clean: P_clean per metric (e.g. `clean_from_results`); None falls back to the dataset's
    'clean' condition, if any. clean_source: where `clean` came from, for the record.
    reference: an earlier `robustness_summary` of the reference model, which must be named.
    """
    if reference is not None and not reference_name:
        raise ValueError("a reference model needs a reference_name (corruption errors are meaningless unnamed)")
    null_reasons: dict[str, str] = {}
    clean_values, source = _clean_values(per_condition, clean, clean_source, null_reasons)
    conditions = sorted(key for key in per_condition if key[0] != CLEAN)
    summaries = {
        metric: _metric_summary(
            metric,
            {key: per_condition[key].get(metric) for key in conditions},
            None if clean_values is None else clean_values[metric],
            reference,
            null_reasons,
        )
        for metric in ROBUSTNESS_METRICS
    }
    corruptions = sorted({corruption for corruption, _ in conditions})

    def by_metric(name: str) -> dict | None:
        return None if reference is None else {metric: summaries[metric][name] for metric in ROBUSTNESS_METRICS}

    if reference is None:
        for name in ("ce", "mce", "relative_ce", "relative_mce"):
            null_reasons[name] = "no reference model given"
    return {
        "metrics": list(ROBUSTNESS_METRICS),
        "corruptions": corruptions,
        "severities": sorted({severity for _, severity in conditions}),
        "table": [
            {"corruption": corruption, "severity": severity, **{m: per_condition[(corruption, severity)].get(m) for m in ROBUSTNESS_METRICS}}
            for corruption, severity in conditions
        ],
        "clean": clean_values,
        "clean_source": source,
        "mpc": {metric: summaries[metric]["mpc"] for metric in ROBUSTNESS_METRICS},
        "rpc": {metric: summaries[metric]["rpc"] for metric in ROBUSTNESS_METRICS},
        "per_corruption": {
            corruption: {metric: summaries[metric]["per_corruption"][corruption] for metric in ROBUSTNESS_METRICS}
            for corruption in corruptions
        },
        "ce": by_metric("ce"),
        "mce": by_metric("mce"),
        "relative_ce": by_metric("relative_ce"),
        "relative_mce": by_metric("relative_mce"),
        "reference": reference_name,
        "null_reasons": null_reasons,
        "definitions": DEFINITIONS,
    }
