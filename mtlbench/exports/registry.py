"""The exporters, by name: each is `export(card, out, progress)`, writing into the empty folder `out`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.progress import ProgressFn
from mtlbench.registry import Registry

Exporter = Callable[[DatasetCard, Path, ProgressFn], None]

EXPORTERS: Registry[Exporter] = Registry(
    "export", modules=("mtlbench.exports.endoarss", "mtlbench.exports.coco", "mtlbench.exports.hf")
)
