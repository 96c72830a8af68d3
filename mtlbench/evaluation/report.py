"""The evaluation report on screen: headline metrics with intervals, per-class and per-activity tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

HEADLINE_LABELS = {
    "activity": {
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced accuracy",
        "macro_f1": "macro-F1",
        "auroc_macro_ovr": "AUROC (macro one-vs-rest)",
        "ece": "expected calibration error (lower is better)",
    },
    "segmentation": {
        "miou": "mIoU (all classes)",
        "miou_foreground": "mIoU (foreground)",
        "mdice": "mDice",
        "pixel_accuracy": "pixel accuracy",
        "challenge_iou": "EndoVis Challenge IoU",
        "isi_iou": "ISI IoU",
        "mciou": "mcIoU",
        "per_activity_miou_std": "std of mIoU across activities (lower is better)",
    },
}


def format_number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _interval(section: dict, key: str) -> str:
    interval = (section.get("ci") or {}).get(key)
    return "" if not interval else f"[{interval['low']:.4f}, {interval['high']:.4f}]"


def headline_table(results: dict) -> Table:
    table = Table(title=f"{results['dataset']['name']} / {results['dataset']['split']}: headline metrics", title_justify="left")
    for column in ("task", "metric", "value", "95% CI (sequence bootstrap)"):
        table.add_column(column)
    for task, labels in HEADLINE_LABELS.items():
        section = results[task]
        if not section.get("scored"):
            table.add_row(task, "(not in the submission)", "", "")
            continue
        for key, label in labels.items():
            table.add_row(task, label, format_number(section.get(key)), _interval(section, key))
    per_sequence = results["activity"].get("per_sequence_accuracy")
    if per_sequence:
        spread = "" if per_sequence["std"] is None else f" +- {per_sequence['std']:.4f}"
        table.add_row("activity", "accuracy per sequence, mean +- std", f"{per_sequence['mean']:.4f}{spread}", "")
    for name in ("delta_m", "delta_p"):
        value = (results.get("multitask") or {}).get(name)
        if value is not None:
            table.add_row("multi-task", f"{name} (%) vs single-task baselines", f"{value:+.2f}", "")
    return table


def class_table(results: dict) -> Table:
    table = Table(title="Segmentation per class (dataset-level)", title_justify="left")
    for column in ("id", "class", "IoU", "Dice", "GT pixels", "predicted pixels"):
        table.add_column(column, justify="right" if column != "class" else "left")
    for row in results["segmentation"]["per_class"]:
        table.add_row(
            str(row["id"]), escape(row["name"]), format_number(row["iou"]), format_number(row["dice"]),
            f"{row['gt_pixels']:,}", f"{row['pred_pixels']:,}",
        )
    return table


def _defined_scores(row: dict, predicted: int | None) -> tuple:
    """Precision, recall and F1 of a per-class row, None where undefined: results.json keeps
    scikit-learn's zero_division = 0, but a table that shows 0 for an activity with no frames
    (recall) or never predicted (precision) says something false."""
    if "precision" not in row:
        return None, None, None
    support = row["support"]
    return (
        row["precision"] if predicted else None,
        row["recall"] if support else None,
        row["f1"] if support or predicted else None,
    )


def activity_table(results: dict) -> Table:
    table = Table(title="Per activity (n/a: no test frame of the activity, or never predicted)", title_justify="left")
    for column in ("id", "activity", "support", "precision", "recall", "F1", "mIoU of its frames"):
        table.add_column(column, justify="right" if column != "activity" else "left")
    segmentation_rows = {row["id"]: row for row in results["segmentation"].get("per_activity") or []}
    confusion = results["activity"].get("confusion_matrix")
    predicted = [sum(row[column] for row in confusion) for column in range(len(confusion))] if confusion else None
    for row in results["activity"]["per_class"] or _support_only(results):
        miou = segmentation_rows.get(row["id"], {}).get("miou")
        scores = _defined_scores(row, predicted[row["id"]] if predicted else None)
        table.add_row(
            str(row["id"]), escape(row["name"]), str(row.get("support", "")), *map(format_number, scores), format_number(miou),
        )
    return table


def _support_only(results: dict) -> list[dict]:
    """Rows for the per-activity table when only segmentation was scored."""
    return [{"id": row["id"], "name": row["name"], "support": row["frames"]} for row in results["segmentation"].get("per_activity") or []]


def print_report(results: dict, console: Console) -> None:
    submission = results["submission"]
    method = submission["meta"].get("method", "(no method name)")
    console.print(
        f"[bold]{escape(str(method))}[/] on {escape(results['dataset']['name'])} {escape(results['dataset']['version'])}, "
        f"split {escape(results['dataset']['split'])}: {results['counts']['frames']} frames, "
        f"{results['counts']['sequences']} sequences; scored: {', '.join(submission['tasks_scored'])}",
        highlight=False,
    )
    console.print(headline_table(results))
    if results["segmentation"].get("scored"):
        console.print(class_table(results))
    console.print(activity_table(results))
    for task, missing in submission["missing"].items():
        console.print(f"[yellow]{missing['count']} {task} prediction(s) missing, scored as wrong[/]", highlight=False)
    if submission["fingerprint_check"].startswith("differs"):
        console.print("[yellow]the submission was made for another dataset fingerprint (ignored on request)[/]")
