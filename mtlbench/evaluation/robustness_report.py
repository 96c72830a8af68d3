"""Robustness on screen: metric per corruption and severity, mPC, rPC, mCE (the picture: robustness_plot.py)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mtlbench.evaluation.tables import format_number

# Headline robustness numbers whose null reason is worth a line under the table.
SUMMARY_REASON_PREFIXES = ("clean", "mpc.", "rpc.", "mce.", "relative_mce.")


def _severity_cells(summary: dict, metric: str, corruption: str) -> list[str]:
    """A corruption's value at each severity: blank where the condition is not in the set, n/a where null."""
    rows = {row["severity"]: row for row in summary["table"] if row["corruption"] == corruption}
    return [format_number(rows[severity][metric]) if severity in rows else "" for severity in summary["severities"]]


def _has_values(summary: dict, metric: str) -> bool:
    return any(row[metric] is not None for row in summary["table"])


def robustness_table(summary: dict) -> Table:
    """One block per metric with values: corruption rows, severity columns, their mean, CE; then mPC, P_clean, rPC."""
    with_reference = summary["ce"] is not None
    title = "Robustness: metric per corruption and severity"
    if with_reference:
        title += f" (CE against {escape(str(summary['reference']))})"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("corruption")
    for severity in summary["severities"]:
        table.add_column(f"severity {severity}", justify="right")
    table.add_column("mean", justify="right")
    if with_reference:
        table.add_column("CE", justify="right")
        table.add_column("relative CE", justify="right")
    blank = [""] * len(summary["severities"])
    for metric in summary["metrics"]:
        if not _has_values(summary, metric):
            continue
        for corruption in summary["corruptions"]:
            cells = _severity_cells(summary, metric, corruption)
            cells.append(format_number(summary["per_corruption"][corruption][metric]))
            if with_reference:
                cells += [format_number(summary["ce"][metric][corruption]), format_number(summary["relative_ce"][metric][corruption])]
            table.add_row(metric, escape(corruption), *cells)
        mean_row = [format_number(summary["mpc"][metric])]
        if with_reference:
            mean_row += [format_number(summary["mce"][metric]), format_number(summary["relative_mce"][metric])]
        table.add_row(metric, "[bold]all corruptions: mPC; mCE[/]", *blank, *mean_row)
        clean = None if summary["clean"] is None else summary["clean"][metric]
        table.add_row(metric, "clean: P_clean", *blank, format_number(clean))
        table.add_row(metric, "rPC = mPC / P_clean", *blank, format_number(summary["rpc"][metric]), end_section=True)
    return table


def print_robustness(summary: dict, console: Console) -> None:
    console.print(
        f"Robustness: {len(summary['corruptions'])} corruptions x severities "
        f"{', '.join(str(s) for s in summary['severities'])}; P_clean from {escape(summary['clean_source'])}; "
        f"reference model: {escape(str(summary['reference'] or '(none: no CE)'))}",
        highlight=False,
    )
    console.print(robustness_table(summary))
    for key, reason in summary["null_reasons"].items():
        if key.startswith(SUMMARY_REASON_PREFIXES):
            console.print(f"[yellow]{escape(key)}: {escape(reason)}[/]", highlight=False)
