"""The evaluation report on screen: headline metrics with intervals, then each task's tables
(chosen by its task type's scorer)."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mtlbench.evaluation.scorers import scorer_of
from mtlbench.evaluation.tables import format_number, interval
from mtlbench.tasks import Task


def headline_table(results: dict, tasks: Sequence[Task]) -> Table:
    table = Table(title=f"{results['dataset']['name']} / {results['dataset']['split']}: headline metrics", title_justify="left")
    for column in ("task", "metric", "value", "95% CI (sequence bootstrap)"):
        table.add_column(column)
    for task in tasks:
        section = results[task.name]
        if not section.get("scored"):
            table.add_row(task.name, "(not in the submission)", "", "")
            continue
        for key, label in scorer_of(task).headline_labels(task).items():
            table.add_row(task.name, label, format_number(section.get(key)), interval(section, key))
        per_sequence = section.get("per_sequence_accuracy")
        if per_sequence:
            spread = "" if per_sequence["std"] is None else f" +- {per_sequence['std']:.4f}"
            table.add_row(task.name, "accuracy per sequence, mean +- std", f"{per_sequence['mean']:.4f}{spread}", "")
    for name in ("delta_m", "delta_p"):
        value = (results.get("multitask") or {}).get(name)
        if value is not None:
            table.add_row("multi-task", f"{name} (%) vs single-task baselines", f"{value:+.2f}", "")
    return table


def print_report(results: dict, tasks: Sequence[Task], console: Console) -> None:
    submission = results["submission"]
    method = submission["meta"].get("method", "(no method name)")
    console.print(
        f"[bold]{escape(str(method))}[/] on {escape(results['dataset']['name'])} {escape(results['dataset']['version'])}, "
        f"split {escape(results['dataset']['split'])}: {results['counts']['frames']} frames, "
        f"{results['counts']['sequences']} sequences; scored: {', '.join(submission['tasks_scored'])}",
        highlight=False,
    )
    console.print(headline_table(results, tasks))
    for task in tasks:
        for table in scorer_of(task).tables(task, results):
            console.print(table)
    for task, missing in submission["missing"].items():
        console.print(f"[yellow]{missing['count']} {task} prediction(s) missing, scored as wrong[/]", highlight=False)
    if submission["fingerprint_check"].startswith("differs"):
        console.print("[yellow]the submission was made for another dataset fingerprint (ignored on request)[/]")
