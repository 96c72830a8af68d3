"""Scoring the segmentation task: `masks/<sample_id>.png`, IoU, Dice and the EndoVis variants.

`masks/` holds one single-channel 8-bit PNG (mode L) per sample of the split, of the frame's
exact size, with class ids 0..K-1 (255 marks ignored ground truth only: it is not a prediction),
and nothing else. Masks are decoded and counted in worker processes (streaming.py); with an
activity task in the dataset (ACTIVITY_TASK), the mIoU of each activity's frames is reported too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from mtlbench import pngio
from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.plots import activity_miou_plot, class_iou_plot
from mtlbench.evaluation.scorers.base import Scored, Scorer, ScoringOptions, TaskWriter, ZipEntry
from mtlbench.evaluation.scorers.common import SplitContext, format_line, listing, per_sequence, refuse_symlink, with_intervals
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.evaluation.streaming import MaskPair, frame_confusions
from mtlbench.evaluation.tables import format_number
from mtlbench.metrics import segmentation as metrics
from mtlbench.tasks.segmentation import MASKS_FOLDER, SegmentationTask

MASK_SUFFIX = ".png"
HEADLINE = ("miou", "miou_foreground", "mdice", "pixel_accuracy", "challenge_iou", "isi_iou", "mciou")
# Random dummy masks are constant on tiles of this size, so that their PNGs stay small.
MASK_TILE = 16


def mask_bytes(width: int, height: int) -> int:
    """A generous bound on an 8-bit PNG of width x height, even stored without compression."""
    return 2 * width * height + 2**20


def _unexpected_entries(unexpected: list[str]) -> str:
    return f"{len(unexpected)} unexpected entr{'y' if len(unexpected) == 1 else 'ies'}: {listing(unexpected)}"


def _entry_problem(name: str, kind: str, context: SplitContext) -> str | None:
    """Why an entry of masks/ (kind: file, dir or other) is not a mask of the split, if it is not."""
    if kind == "dir":
        return "a sub-folder"
    if kind != "file":
        return "not a regular file"
    if not name.endswith(MASK_SUFFIX):
        return f"not {MASK_SUFFIX}"
    return context.where_else(name[: -len(MASK_SUFFIX)])


class _Writer(TaskWriter):
    """A mask PNG per sample, as it comes: a split's full-size masks need not fit in memory together."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, sample_id: str, prediction: Any) -> None:
        pngio.write_png(self.folder / f"{sample_id}{MASK_SUFFIX}", prediction)


@SCORERS.register("segmentation")
class SegmentationScorer(Scorer):
    kind = "segmentation"
    headline = HEADLINE
    labels = {
        "miou": "mIoU (all classes)",
        "miou_foreground": "mIoU (foreground)",
        "mdice": "mDice",
        "pixel_accuracy": "pixel accuracy",
        "challenge_iou": "EndoVis Challenge IoU",
        "isi_iou": "ISI IoU",
        "mciou": "mcIoU",
        "per_activity_miou_std": "std of mIoU across activities (lower is better)",
        "per_activity_foreground_iou_std": "std of foreground IoU across activities (EndoARSS std.py)",
    }
    summary = "masks/<sample_id>.png: single-channel 8-bit class ids, the frame's size"
    missing_rule = "a missing mask counts as no pixel right"

    def read(self, task: SegmentationTask, path: Path, context: SplitContext) -> dict[str, Path]:
        if not path.is_dir():
            raise InputError(path, "must be a folder of <sample_id>.png masks")
        found: dict[str, Path] = {}
        unexpected: list[str] = []
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                refuse_symlink(path / entry.name)
                kind = "dir" if entry.is_dir(follow_symlinks=False) else "file" if entry.is_file(follow_symlinks=False) else "other"
                problem = _entry_problem(entry.name, kind, context)
                if problem:
                    unexpected.append(f"{entry.name} ({problem})")
                else:
                    found[entry.name[: -len(MASK_SUFFIX)]] = path / entry.name
        if unexpected:
            raise InputError(path, _unexpected_entries(unexpected))
        return found

    def zip_entries(self, task, name, entries, context, where) -> list[ZipEntry]:
        sizes = {sample.sample_id: (sample.width, sample.height) for sample in context.samples}
        wanted, kinds = [], {}
        for relative, is_dir in entries:
            if len(relative) == 1:
                if not is_dir:
                    raise InputError(where / name, "must be a folder of <sample_id>.png masks")
                wanted.append(ZipEntry(relative, "folder", 0))
            elif len(relative) > 2 or is_dir:
                kinds[relative[1]] = "dir"
            else:
                kinds.setdefault(relative[1], "file")
                width, height = sizes.get(relative[1][: -len(MASK_SUFFIX)], (0, 0))
                wanted.append(ZipEntry(relative, f"{width}x{height} mask", mask_bytes(width, height)))
        unexpected = [f"{entry} ({problem})" for entry, kind in sorted(kinds.items()) if (problem := _entry_problem(entry, kind, context))]
        if unexpected:
            raise InputError(where / name, _unexpected_entries(unexpected))
        return wanted

    def writer(self, task: SegmentationTask, root: Path, context: SplitContext) -> TaskWriter:
        return _Writer(root / MASKS_FOLDER)

    def score(self, task: SegmentationTask, predictions: dict[str, Path], context: SplitContext, options: ScoringOptions) -> Scored:
        pairs = [MaskPair(context.card.root, sample, predictions.get(sample.sample_id), len(task.classes)) for sample in context.samples]
        confusions = frame_confusions(pairs, len(task.classes), options.workers, options.progress)
        activity = context.card.activity_task
        by_activity = {}
        if activity is not None:
            frame_activities = np.array([sample.labels[activity.name].id for sample in context.samples], dtype=np.intp)
            by_activity = {"frame_activities": frame_activities, "activity_names": activity.classes}
        section = metrics.segmentation_metrics(confusions, task.class_names, **by_activity)
        section = with_intervals(
            section,
            per_sequence(metrics.frame_statistics(confusions, background=0), context),
            lambda sums: metrics.headline_from_sums(sums, background=0),
            options.bootstrap,
            options.seed,
        )
        return Scored(section, {"confusions": confusions})

    def guess(self, task: SegmentationTask, sample: Sample, kind: str, context: SplitContext, rng: np.random.Generator) -> np.ndarray:
        if kind == "constant":
            counts = context.card.statistics.get("train", {}).get("tasks", {}).get(task.name, {}).get("pixel_counts", {})
            class_id = int(np.argmax([counts.get(name, 0) for name in task.class_names]))
            return np.full((sample.height, sample.width), class_id, dtype=np.uint8)
        rows, columns = math.ceil(sample.height / MASK_TILE), math.ceil(sample.width / MASK_TILE)
        tiles = rng.integers(0, len(task.classes), size=(rows, columns), dtype=np.uint8)
        return np.repeat(np.repeat(tiles, MASK_TILE, axis=0), MASK_TILE, axis=1)[: sample.height, : sample.width]

    def describe(self, task: SegmentationTask, context: SplitContext | None) -> list[str]:
        lines = [
            format_line(2, f"{MASKS_FOLDER}/<sample_id>{MASK_SUFFIX}", f"task {task.name} (segmentation): single-channel 8-bit PNG (mode L),"),
            "                          the frame's exact size, class ids 0..K-1 (255 is not a prediction);",
            f"                          nothing else in {MASKS_FOLDER}/",
        ]
        if context is not None:
            lines.append("    classes (id name): " + ", ".join(f"{cls.id} {cls.name}" for cls in task.classes))
        return lines

    def tables(self, task: SegmentationTask, results: dict) -> list[Table]:
        if not results[task.name].get("scored"):
            return []
        table = Table(title=f"Task {task.name}: per class (dataset-level)", title_justify="left")
        for column in ("id", "class", "IoU", "Dice", "GT pixels", "predicted pixels"):
            table.add_column(column, justify="right" if column != "class" else "left")
        for row in results[task.name]["per_class"]:
            table.add_row(
                str(row["id"]), escape(row["name"]), format_number(row["iou"]), format_number(row["dice"]),
                f"{row['gt_pixels']:,}", f"{row['pred_pixels']:,}",
            )
        return [table]

    def plots(self, task: SegmentationTask, results: dict, folder: Path) -> list[Path]:
        written = [class_iou_plot(results, task.name, folder / f"{task.name}_class_iou.png")]
        if results[task.name].get("per_activity"):
            written.append(activity_miou_plot(results, task.name, folder / f"{task.name}_activity_miou.png"))
        return written
