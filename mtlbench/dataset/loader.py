"""A torch Dataset over one split of a dataset folder.

Every file is checked against its sha256 in samples.csv as it is read (mtlbench.dataset.files).

Frames and masks are resized as uint8 by a resize rule (mtlbench/dataset/resize.py; by default
images bilinear with antialiasing, masks nearest-neighbour so class ids are never blended), the
same pixels a prepared cache (mtlbench/dataset/cache.py) holds; normalisation is done in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mtlbench.dataset.files import read_image, read_mask
from mtlbench.dataset.manifest import DatasetCard, Sample, read_dataset
from mtlbench.dataset.resize import check_rule, resize_frame
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
        resize: str = "antialias",
    ):
        self.card = card
        self.split = split
        self.samples: tuple[Sample, ...] = card.split(split)
        self.size = None if size is None else tuple(size)
        self.resize = check_rule(resize)
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

    def frame_pair(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Sample `index`'s frame (3, H, W) and mask (H, W; None without segmentation), uint8 at this split's size."""
        return read_resized(self.card.root, self.samples[index], self.size, self.resize)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        frame, mask = self.frame_pair(index)
        image = torch.from_numpy(frame).float().div_(255)
        if self.mean_std is not None:
            mean, std = self.mean_std
            image = (image - mean) / std
        item = {"image": image, "sample_id": sample.sample_id}
        for task in self.card.tasks:
            item.update(task.item(sample.labels[task.name]))
        if mask is not None:
            item["mask"] = torch.from_numpy(mask.astype(np.int64))
        return item


def read_resized(root: Path, sample: Sample, size: tuple[int, int] | None, rule: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A sample's frame, planar (3, H, W) as torch lays images out, and mask (H, W; None without
    segmentation), uint8, verified, decoded and brought to `size` (None: as stored) by `rule`."""
    image = read_image(root, sample)
    mask = read_mask(root, sample) if sample.mask_file is not None else None
    image, mask = resize_frame(image, mask, size, rule)
    return np.ascontiguousarray(image.transpose(2, 0, 1)), mask


def load_dataset(
    root: str | Path,
    split: str,
    size: tuple[int, int] | None = None,
    normalise: str | tuple[Sequence[float], Sequence[float]] | None = None,
    resize: str = "antialias",
) -> SplitDataset:
    """One split of a dataset folder as a torch Dataset; `size` is (height, width), `resize` the rule that brings frames to it."""
    return SplitDataset(read_dataset(root), split, size=size, normalise=normalise, resize=resize)
