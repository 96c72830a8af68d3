"""Sources of a robustness set: a built dataset's frame under a corruption, and its mask as is.

Both read the base dataset through mtlbench.dataset.files, so a base whose files changed after
it was built is refused instead of being corrupted and stamped with its fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlbench.dataset.files import read_image, read_mask
from mtlbench.dataset.manifest import Sample
from mtlbench.dataset.writer import MaskDecoding

CLEAN = "clean"  # the corruption name of uncorrupted copies (severity 0)


@dataclass(frozen=True)
class CorruptedImage:
    root: Path  # the base dataset
    sample: Sample
    corruption: str
    severity: int
    seed: int
    release_compat: bool

    def describe(self) -> str:
        return f"{self.root / self.sample.image} ({self.corruption}, severity {self.severity})"

    def load(self) -> np.ndarray:
        image = read_image(self.root, self.sample)
        if self.corruption == CLEAN:
            return image
        from mtlbench.corruptions import corrupt

        return corrupt(image, self.corruption, self.severity, self.seed, release_compat=self.release_compat)


@dataclass(frozen=True)
class DatasetMask:
    """A mask of a built dataset: already class ids, copied unchanged."""

    root: Path
    sample: Sample

    def describe(self) -> str:
        return str(self.root / self.sample.mask)

    def decode(self, height: int, width: int) -> MaskDecoding:
        return MaskDecoding(read_mask(self.root, self.sample))
