"""How numbers of results.json are shown in tables and pictures, and the per-class table rows
that classification and multi-label tasks share."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


def format_number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def interval(section: dict, key: str) -> str:
    """The 95% interval of a metric, or why there is none."""
    found = (section.get("ci") or {}).get(key)
    if found:
        return f"[{found['low']:.4f}, {found['high']:.4f}]"
    reason = section.get("null_reasons", {}).get(f"ci.{key}") or section.get("null_reasons", {}).get("ci")
    return f"n/a: {reason}" if reason else ""


def defined_scores(row: dict, predicted: int | None) -> tuple:
    """Precision, recall and F1 of a per-class row, None where undefined: results.json keeps
    scikit-learn's zero_division = 0, but a table that shows 0 for a class with no frames
    (recall) or never predicted (precision) says something false."""
    if "precision" not in row:
        return None, None, None
    support = row["support"]
    return (
        row["precision"] if predicted else None,
        row["recall"] if support else None,
        row["f1"] if support or predicted else None,
    )


def per_class_table(title: str, name: str, rows: list[dict], predicted: list[int] | None, extra: dict[str, list] | None = None) -> Table:
    """id, name, support, precision, recall, F1 (n/a where undefined), and extra columns by row id."""
    extra = extra or {}
    table = Table(title=f"{title} (n/a: no test frame, or never predicted)", title_justify="left")
    for column in ("id", name, "support", "precision", "recall", "F1", *extra):
        table.add_column(column, justify="left" if column == name else "right")
    for row in rows:
        scores = defined_scores(row, predicted[row["id"]] if predicted else None)
        table.add_row(
            str(row["id"]), escape(row["name"]), str(row.get("support", "")), *map(format_number, scores),
            *(format_number(values.get(row["id"])) for values in extra.values()),
        )
    return table
