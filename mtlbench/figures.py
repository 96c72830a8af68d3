"""Saving matplotlib figures reproducibly: the one place that imports pyplot and writes PNGs."""

from __future__ import annotations

import io
from pathlib import Path

from mtlbench.outputs import write_bytes

DPI = 120


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen needed), imported on first use: it is slow to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    figure.tight_layout()
    buffer = io.BytesIO()
    # No "Software" text chunk: the same results give the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    pyplot().close(figure)
    write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def results_label(results: dict) -> str:
    """'<method> on <dataset> <version> / <split>', the first line of every plot title of an evaluation."""
    method = results.get("submission", {}).get("meta", {}).get("method") or "(unnamed method)"
    dataset = results["dataset"]
    return f"{method} on {dataset['name']} {dataset['version']} / {dataset['split']}"
