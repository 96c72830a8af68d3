"""An entry's summary across its seeds, derived from the seeds alone (docs/leaderboards.md).

- each headline metric: mean and sample standard deviation (n - 1; null for one seed) over the
  seeds where it is defined;
- Δm and Δp (mtlbench.metrics.multitask) of each seed against the mean metrics of the board's
  single-task baselines, then their mean and standard deviation over the seeds;
- on a robustness set: mPC and rPC of each seed, and its mCE against the board's robustness
  reference (the reference's tables averaged over its seeds), each with mean and standard deviation.

A board file stores these summaries for its readers, and its reader recomputes them: a summary
edited by hand does not match and is refused.
"""

from __future__ import annotations

import math

from mtlbench.metrics.multitask import multitask_deltas
from mtlbench.metrics.robustness import ROBUSTNESS_METRICS, robustness_summary


def spread(values: list[float | None]) -> dict:
    """{"mean", "std", "n"} of the defined values; std is the sample standard deviation (n - 1)."""
    defined = [value for value in values if value is not None]
    n = len(defined)
    if not n:
        return {"mean": None, "std": None, "n": 0}
    mean = math.fsum(defined) / n
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in defined) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def _as_results(metrics: dict[str, float | None]) -> dict:
    """{"task.metric": v} as results.json-like sections {"task": {"metric": v}}."""
    sections: dict[str, dict] = {}
    for name, value in metrics.items():
        task, metric = name.split(".", 1)
        sections.setdefault(task, {})[metric] = value
    return sections


def mean_metrics(entry: dict) -> dict[str, float | None]:
    names = entry["seeds"][0]["metrics"].keys()
    return {name: spread([seed["metrics"][name] for seed in entry["seeds"]])["mean"] for name in names}


def _deltas(entry: dict, board: dict, entries: dict[str, dict]) -> tuple[dict | None, dict | None, str | None]:
    baselines = board["single_task_baselines"]
    if not baselines:
        return None, None, "the board names no single-task baselines"
    if entry["id"] in baselines:
        return None, None, "a single-task baseline of this board"
    baseline_results = [_as_results(mean_metrics(entries[name])) for name in baselines]
    tasks = board["dataset"]["tasks"]
    per_seed = [multitask_deltas(_as_results(seed["metrics"]), baseline_results, tasks) for seed in entry["seeds"]]
    return spread([d["delta_m"] for d in per_seed]), spread([d["delta_p"] for d in per_seed]), None


def _reference_table(reference: dict) -> dict:
    """The robustness reference's table and clean values, each averaged over its seeds."""
    seeds = [seed["robustness"] for seed in reference["seeds"]]
    rows = []
    for index, row in enumerate(seeds[0]["table"]):
        rows.append({
            "corruption": row["corruption"], "severity": row["severity"],
            **{m: spread([seed["table"][index][m] for seed in seeds])["mean"] for m in ROBUSTNESS_METRICS},
        })
    clean = {m: spread([(seed["clean"] or {}).get(m) for seed in seeds])["mean"] for m in ROBUSTNESS_METRICS}
    return {"table": rows, "clean": clean}


def _robustness(entry: dict, board: dict, entries: dict[str, dict]) -> dict | None:
    seeds = [seed["robustness"] for seed in entry["seeds"]]
    if any(seed is None for seed in seeds):
        return None
    reference_id = board["robustness_reference"]
    reference = _reference_table(entries[reference_id]) if reference_id else None
    mce = {}
    for seed in seeds:
        per_condition = {(row["corruption"], row["severity"]): {m: row[m] for m in ROBUSTNESS_METRICS} for row in seed["table"]}
        summary = robustness_summary(per_condition, seed["clean"], reference, reference_id) if reference else None
        for m in ROBUSTNESS_METRICS:
            mce.setdefault(m, []).append(summary["mce"][m] if summary else None)
    return {
        "mpc": {m: spread([seed["mpc"][m] for seed in seeds]) for m in ROBUSTNESS_METRICS},
        "rpc": {m: spread([seed["rpc"][m] for seed in seeds]) for m in ROBUSTNESS_METRICS},
        "mce": {m: spread(values) for m, values in mce.items()},
        "mce_reference": reference_id,
    }


def entry_summary(entry: dict, board: dict) -> dict:
    entries = {other["id"]: other for other in board["entries"]}
    names = list(entry["seeds"][0]["metrics"])
    delta_m, delta_p, reason = _deltas(entry, board, entries)
    return {
        "metrics": {name: spread([seed["metrics"][name] for seed in entry["seeds"]]) for name in names},
        "delta_m": delta_m,
        "delta_p": delta_p,
        **({"delta_null_reason": reason} if reason else {}),
        "robustness": _robustness(entry, board, entries),
    }


def ranking_value(entry: dict, board: dict) -> float | None:
    """What the board ranks by: mean Δm where the board has single-task baselines, else the mean of
    its first headline metric."""
    summary = entry["summary"]
    if board["single_task_baselines"]:
        return (summary["delta_m"] or {}).get("mean")
    first = board["headline_metrics"][0]
    return summary["metrics"].get(first, {}).get("mean")


def ranked(board: dict) -> list[dict]:
    """Entries best first; entries without a ranking value last, by name."""
    def key(entry):
        value = ranking_value(entry, board)
        return (value is None, -(value or 0.0), entry["name"])

    return sorted(board["entries"], key=key)
