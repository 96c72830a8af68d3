"""The exporters, by name, one per file: what an export needs of a dataset's tasks, and how it
writes the dataset into the empty folder `out`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.progress import ProgressFn
from mtlbench.registry import Registry
from mtlbench.tasks import Task


@dataclass(frozen=True)
class Exporter:
    write: Callable[[DatasetCard, Path, ProgressFn], None]
    # why a dataset with these tasks cannot be exported this way, or None if it can
    unsupported: Callable[[Sequence[Task]], str | None] = lambda tasks: None


EXPORTERS: Registry[Exporter] = Registry(
    "export", modules=("mtlbench.exports.endoarss", "mtlbench.exports.coco", "mtlbench.exports.hf")
)
