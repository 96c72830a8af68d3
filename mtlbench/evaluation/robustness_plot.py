"""Robustness as a picture: each metric against severity, one line per corruption, P_clean dotted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtlbench.evaluation.tables import format_number
from mtlbench.figures import pyplot, results_label, save_figure

# Thirteen and more lines stay apart: ten distinct hues (tab10), solid for the first ten
# corruptions and dashed after, each with its own marker; the clean level is a black dotted line.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "d", "h")
LINE_STYLES = ("-", "--", "-.")
Y_MARGIN = 0.05


def _style(index: int, plt) -> dict:
    return {
        "color": plt.get_cmap("tab10")(index % 10),
        "linestyle": LINE_STYLES[(index // 10) % len(LINE_STYLES)],
        "marker": MARKERS[index % len(MARKERS)],
    }


def _y_limits(values: list[float]) -> tuple[float, float]:
    """The range of the values with a margin, inside [0, 1]; the full range when there are none."""
    if not values:
        return 0.0, 1.02
    low, high = min(values), max(values)
    margin = max(Y_MARGIN * (high - low), 0.02)
    return max(0.0, low - margin), min(1.02, high + margin)


def robustness_plot(results: dict, path: Path) -> Path:
    """One panel per metric of the results' robustness section."""
    plt = pyplot()
    summary = results["robustness"]
    metrics = summary["metrics"]
    figure, axes_row = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics) + 2.2, 4.2), squeeze=False)
    for axes, metric in zip(axes_row[0], metrics):
        shown = []
        for index, corruption in enumerate(summary["corruptions"]):
            rows = [row for row in summary["table"] if row["corruption"] == corruption]
            # NaN only inside the figure: a null value leaves a gap in the line
            values = [np.nan if row[metric] is None else row[metric] for row in rows]
            shown += [value for value in values if not np.isnan(value)]
            axes.plot([row["severity"] for row in rows], values, markersize=5, linewidth=1.2, label=corruption, **_style(index, plt))
        clean = None if summary["clean"] is None else summary["clean"][metric]
        if clean is not None:
            axes.axhline(clean, color="black", linestyle=":", linewidth=1.5, label="clean (P_clean)")
            shown.append(clean)
        if not shown:
            axes.text(0.5, 0.5, "no values (task not scored?)", ha="center", va="center", transform=axes.transAxes, fontsize=8)
        axes.set_xticks(summary["severities"])
        axes.set_ylim(*_y_limits(shown))
        axes.grid(alpha=0.3)
        axes.set_xlabel("severity")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: mPC {format_number(summary['mpc'][metric])}, rPC {format_number(summary['rpc'][metric])}", fontsize=9)
    legend = {}
    for axes in axes_row[0]:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        axes_row[0][-1].legend(legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    figure.suptitle(f"{results_label(results)}: robustness", fontsize=10)
    return save_figure(figure, Path(path))
