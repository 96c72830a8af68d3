"""A torch Dataset over one split of a dataset folder.

Every file is checked against its sha256 in samples.csv as it is read (mtlbench.dataset.files).

Resizing and normalisation are done in torch (no torchvision): images bilinear with
antialiasing, masks nearest-neighbour so class ids are never blended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mtlbench.dataset.files import read_image, read_mask
from mtlbench.dataset.manifest import DatasetCard, Sample, read_dataset
from mtlbench.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EndoViT's pre-training statistics (Endo700k), for its encoder
ENDO700K_MEAN = (0.3464, 0.2280, 0.2228)
ENDO700K_STD = (0.2520, 0.2128, 0.2093)
NORMALISATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "endo700k": (ENDO700K_MEAN, ENDO700K_STD)}


class SplitDataset(Dataset):
    """Items are dicts: `image` (3, H, W) float32 in [0, 1] or normalised, `sample_id` (str), and
    one or more entries per task: a classification task `<name>` -> class id (int); a multilabel
    task `<name>` -> (L,) float32 0/1; a text task `<name>` -> target text and `<name>.<field>`
    -> each context field; the segmentation task `mask` -> (H, W) int64 with 255 = ignore."""

    def __init__(
        self,
        card: DatasetCard,
        split: str,
        size: tuple[int, int] | None = None,
        normalise: str | tuple[Sequence[float], Sequence[float]] | None = None,
    ):
        self.card = card
        self.split = split
        self.samples: tuple[Sample, ...] = card.split(split)
        self.size = size
        if isinstance(normalise, str):
            if normalise not in NORMALISATIONS:
                raise InputError("normalise", f"unknown normalisation {normalise!r} (known: {', '.join(NORMALISATIONS)})")
            normalise = NORMALISATIONS[normalise]
        self.mean_std = None if normalise is None else tuple(torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in normalise)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(cls.name for cls in self.card.classes)

    @property
    def activity_names(self) -> tuple[str, ...]:
        return self.card.activities

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = torch.from_numpy(read_image(self.card.root, sample).copy()).permute(2, 0, 1).float().div_(255)
        resize = self.size is not None and tuple(self.size) != (sample.height, sample.width)
        if resize:
            image = F.interpolate(image[None], size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]
        if self.mean_std is not None:
            mean, std = self.mean_std
            image = (image - mean) / std
        item = {"image": image, "sample_id": sample.sample_id}
        for task in self.card.tasks:
            item.update(task.item(sample.labels[task.name]))
        if sample.mask_file is not None:
            mask = torch.from_numpy(read_mask(self.card.root, sample).astype(np.int64))
            if resize:
                mask = F.interpolate(mask[None, None].float(), size=self.size, mode="nearest-exact")[0, 0].long()
            item["mask"] = mask
        return item


def load_dataset(
    root: str | Path,
    split: str,
    size: tuple[int, int] | None = None,
    normalise: str | tuple[Sequence[float], Sequence[float]] | None = None,
) -> SplitDataset:
    """One split of a dataset folder as a torch Dataset; `size` is (height, width)."""
    return SplitDataset(read_dataset(root), split, size=size, normalise=normalise)
