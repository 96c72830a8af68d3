"""All pictures of one results.json: each scored task's (chosen by its scorer) and the robustness plot."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtlbench.evaluation.robustness_plot import robustness_plot
from mtlbench.evaluation.scorers import scorer_of
from mtlbench.tasks import Task


def write_plots(results: dict, tasks: Sequence[Task], folder: Path) -> list[Path]:
    """The PNG pictures of the scored tasks (and of the robustness summary) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in tasks:
        if results[task.name].get("scored"):
            written += scorer_of(task).plots(task, results, folder)
    if "robustness" in results:
        written.append(robustness_plot(results, folder / "robustness.png"))
    return written
