"""A board as markdown (BOARDS_DIR/<name>.md): the ranked table, robustness, and each entry's provenance."""

from __future__ import annotations

from mtlbench.leaderboard.summary import ranked
from mtlbench.metrics.robustness import ROBUSTNESS_METRICS

DEMO_BANNER = "DEMO BOARD: synthetic data and randomly initialised backbones: NOT COMPARABLE with anything"
NO_ENTRIES = "No entries yet. Add runs with `mtlbench leaderboard add RUN_DIR --board NAME` (docs/leaderboards.md)."


def number(stats: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    """'mean ± std' of a spread; '–' where undefined; the mean alone for one seed."""
    if not stats or stats.get("mean") is None:
        return "–"
    text = f"{stats['mean'] * scale:.{digits}f}"
    return text if stats.get("std") is None else f"{text} ± {stats['std'] * scale:.{digits}f}"


def entry_flags(entry: dict, board: dict) -> list[str]:
    flags = []
    if entry["id"] in board["single_task_baselines"]:
        flags.append("single-task baseline")
    if entry["id"] == board["robustness_reference"]:
        flags.append("robustness reference")
    if entry["fewer_seeds"]:
        count = len(entry["seeds"])
        flags.append(f"only {count} seed{'s' if count > 1 else ''}")
    if not entry["comparable"]:
        flags.append("NOT COMPARABLE")
    return flags


def commits(entry: dict) -> str:
    found = sorted({(seed["provenance"].get("git") or {}).get("commit") or "none" for seed in entry["seeds"]})
    return ", ".join(commit[:10] for commit in found)


def render_markdown(board: dict) -> str:
    lines = [f"# {board['title']}", ""]
    if board["demo"]:
        lines += [f"**{DEMO_BANNER}**", ""]
    dataset = board["dataset"]
    if dataset is None:
        return "\n".join(lines + [NO_ENTRIES, ""])
    lines += [
        f"Dataset `{dataset['name']}` version {dataset['version']}, fingerprint `{dataset['fingerprint']}`, split "
        f"`{dataset['split']}`; evaluator {board['evaluator_major']}.x; track {board['track']}. Each number is the mean "
        "± sample standard deviation over the entry's seeds (test split, checkpoint selected on validation).",
        "",
    ]
    metrics = board["headline_metrics"]
    header = ["#", "entry", "seeds", *metrics, "Δm %", "Δp %", "flags"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, entry in enumerate(ranked(board), 1):
        summary = entry["summary"]
        cells = [
            str(rank), entry["name"], str(len(entry["seeds"])),
            *(number(summary["metrics"].get(m)) for m in metrics),
            number(summary["delta_m"], digits=2), number(summary["delta_p"], digits=2), "; ".join(entry_flags(entry, board)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if board["single_task_baselines"]:
        lines += [f"Δm and Δp against the single-task baseline(s) {', '.join(board['single_task_baselines'])}.", ""]
    robust = [entry for entry in ranked(board) if entry["summary"]["robustness"]]
    if robust:
        rset = board["robustness_set"]
        lines += ["## Robustness", "", f"On `{rset['name']}` (fingerprint `{rset['fingerprint']}`); mCE against "
                  f"{board['robustness_reference'] or 'no reference (mCE undefined)'}.", ""]
        header = ["entry", *(f"mPC {m}" for m in ROBUSTNESS_METRICS), *(f"rPC {m}" for m in ROBUSTNESS_METRICS), *(f"mCE {m}" for m in ROBUSTNESS_METRICS)]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for entry in robust:
            r = entry["summary"]["robustness"]
            cells = [entry["name"], *(number(r[key][m]) for key in ("mpc", "rpc", "mce") for m in ROBUSTNESS_METRICS)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Provenance", "", "| entry | method | config sha256 | commit | seeds | hardware (device × processes) | training time (s, mean) | weights sha256 |",
              "|---|---|---|---|---|---|---|---|"]
    for entry in sorted(board["entries"], key=lambda e: e["id"]):
        provenance = [seed["provenance"] for seed in entry["seeds"]]
        hardware = ", ".join(sorted({f"{p.get('device_name')} × {p.get('world_size')}" for p in provenance}))
        seconds = sum(p.get("training_seconds") or 0 for p in provenance) / len(provenance)
        weights = ", ".join(sorted({w["sha256"][:12] for p in provenance for w in p["weights"]})) or "none (random init)"
        lines.append(f"| {entry['name']} | {entry['method']} | `{entry['config_sha256'][:12]}` | {commits(entry)} | "
                     f"{', '.join(str(seed['seed']) for seed in entry['seeds'])} | {hardware} | {seconds:.0f} | {weights} |")
    return "\n".join(lines) + "\n"
