"""Writing a submission (docs/format-submission.md): the one writer beside the reader
(mtlbench.evaluation.submission), used by dummy submissions and by the reference runners.

A submission is written atomically: files go to a temporary folder that becomes the submission
only when the `with` block ends without an error. What it writes always passes the reader's
validation: one row per added sample, scores normalised to sum to 1 and written as the shortest
text that reads back as the same float, masks as 8-bit PNGs, and submission.json naming the
dataset fingerprint and split.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mtlbench import pngio
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.evaluation.submission import ACTIVITIES_FILE, MASK_SUFFIX, MASKS_FOLDER, META_FILE, score_column
from mtlbench.jsonio import write_json
from mtlbench.outputs import atomic_folder, write_bytes


class SubmissionWriter:
    def __init__(self, card: DatasetCard, split: str, out: Path, meta: dict, *, overwrite: bool = False, option: str = "--out"):
        self.card = card
        self.split = split
        self.split_ids = {sample.sample_id for sample in card.split(split)}
        self.out = Path(out)
        self.meta = {**meta, "dataset_fingerprint": card.fingerprint, "split": split}
        self.overwrite = overwrite
        self.option = option
        self._rows: list[list[str]] = []
        self._folder = None
        self._staging: Path | None = None

    def __enter__(self) -> SubmissionWriter:
        self._folder = atomic_folder(self.out, overwrite=self.overwrite, option=self.option)
        self._staging = self._folder.__enter__()
        return self

    def add(self, sample_id: str, *, scores: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """One sample's activity probabilities (A,) and/or its (H, W) uint8 mask of class ids."""
        if sample_id not in self.split_ids:
            raise ValueError(f"{sample_id!r} is not a sample of split {self.split!r}")
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (len(self.card.activities),) or not np.isfinite(scores).all() or (scores < 0).any() or scores.sum() <= 0:
                raise ValueError(f"{sample_id}: scores must be {len(self.card.activities)} finite non-negative numbers, not all 0")
            scores = scores / scores.sum()
            activity = self.card.activities[int(np.argmax(scores))]
            # repr is the shortest text that reads back as the same float: exact and reproducible.
            self._rows.append([sample_id, activity, *(repr(float(value)) for value in scores)])
        if mask is not None:
            pngio.write_png(self._staging / MASKS_FOLDER / f"{sample_id}{MASK_SUFFIX}", mask)

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            if self._rows:
                buffer = io.StringIO()
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerow(["sample_id", "activity", *(score_column(name) for name in self.card.activities)])
                writer.writerows(self._rows)
                write_bytes(self._staging / ACTIVITIES_FILE, buffer.getvalue().encode("utf-8"))
            write_json(self._staging / META_FILE, self.meta)
        return bool(self._folder.__exit__(kind, error, traceback))
