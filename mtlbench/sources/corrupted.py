"""Sources of the robustness builder: a built dataset's frame under a corruption, and its mask as is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench.dataset.writer import MaskDecoding
from mtlbench.pngio import read_class_mask, read_rgb

CLEAN = "clean"  # the corruption name of uncorrupted copies (severity 0)


@dataclass(frozen=True)
class CorruptedImage:
    path: Path
    corruption: str
    severity: int
    seed: int
    release_compat: bool

    def describe(self) -> str:
        return f"{self.path} ({self.corruption}, severity {self.severity})"

    def load(self) -> np.ndarray:
        image = read_rgb(self.path)
        if self.corruption == CLEAN:
            return image
        from mtlbench.corruptions import corrupt

        return corrupt(image, self.corruption, self.severity, self.seed, release_compat=self.release_compat)


@dataclass(frozen=True)
class DatasetMask:
    """A mask of a built dataset: already class ids, copied unchanged."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

    def decode(self, height: int, width: int) -> MaskDecoding:
        return MaskDecoding(read_class_mask(self.path))
