"""Pictures of a task's results: confusion matrix, per-class bars, per-activity mIoU (PNG).

Every title starts with the method, the dataset and the split, so a picture says what it shows.
The scorer of each task type chooses its pictures (mtlbench/evaluation/scorers/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtlbench.figures import pyplot, results_label, save_figure


def confusion_plot(results: dict, task: str, path: Path) -> Path:
    plt = pyplot()
    names = [row["name"] for row in results[task]["per_class"]]
    counts = np.array(results[task]["confusion_matrix"], dtype=float)
    columns = names + (["(missing)"] if counts[:, -1].any() else [])
    counts = counts[:, : len(columns)]
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 2.5 + 0.45 * len(names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(counts):
        if value:
            axes.text(column, row, f"{int(value)}", ha="center", va="center", fontsize=7, color="white" if share[row, column] > 0.5 else "black")
    axes.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel(f"predicted {task}")
    axes.set_ylabel(f"true {task}")
    axes.set_title(f"{results_label(results)}\n{task} confusion (colour: share of each true class's frames)", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return save_figure(figure, path)


def bars(labels: list[str], values: list, title: str, xlabel: str, path: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 1.5 + 0.3 * len(labels)))
    positions = np.arange(len(labels))
    shown = [0.0 if value is None else value for value in values]
    bars = axes.barh(positions, shown, color=["#bbbbbb" if value is None else "#3b75af" for value in values])
    for bar, value in zip(bars, values):
        axes.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, "n/a" if value is None else f"{value:.3f}", va="center", fontsize=8)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.1)
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=9)
    return save_figure(figure, path)


def class_iou_plot(results: dict, task: str, path: Path) -> Path:
    rows = results[task]["per_class"]
    title = f"{results_label(results)}\nIoU per class (dataset-level; n/a: class absent from GT and prediction)"
    return bars([row["name"] for row in rows], [row["iou"] for row in rows], title, "IoU", path)


def activity_miou_plot(results: dict, task: str, path: Path) -> Path:
    rows = [row for row in results[task]["per_activity"] if row["frames"]]
    labels = [f"{row['name']} ({row['frames']})" for row in rows]
    title = f"{results_label(results)}\nmIoU of the frames of each activity (frames)"
    return bars(labels, [row["miou"] for row in rows], title, "mIoU", path)
