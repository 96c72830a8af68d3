"""Training and evaluation views of a dataset split, and their loaders."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from baselines.augment import augment, resize_pair, sample_generator
from baselines.config import DataConfig
from mtlbench.dataset.loader import NORMALISATIONS, SplitDataset
from mtlbench.dataset.manifest import DatasetCard


class SplitView(Dataset):
    """Items {image (3, h, w), mask (h, w), activity, index} at the model's input size.

    With `train=True` each item is augmented (config.augment) with randomness fixed by
    (seed, epoch, index); `set_epoch` moves to the next epoch's augmentations.
    """

    def __init__(self, card: DatasetCard, split: str, config: DataConfig, train: bool, seed: int):
        self.source = SplitDataset(card, split)
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0
        mean_std = NORMALISATIONS.get(config.normalise) if config.normalise else None
        self.mean_std = None if mean_std is None else tuple(torch.tensor(v).view(3, 1, 1) for v in mean_std)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        item = self.source[index]
        image, mask = item["image"], item["mask"]
        if self.train and self.config.augment:
            image, mask = augment(image, mask, self.config, sample_generator(self.seed, self.epoch, index))
        else:
            image, mask = resize_pair(image, mask, tuple(self.config.input_size))
        if self.mean_std is not None:
            image = (image - self.mean_std[0]) / self.mean_std[1]
        return {"image": image, "mask": mask, "activity": item["activity"], "index": index}


def training_loader(view: SplitView, config: DataConfig, seed: int, epoch: int, distributed: bool) -> DataLoader:
    """A shuffled loader whose order depends only on (seed, epoch) and, when distributed, the rank."""
    view.set_epoch(epoch)
    if distributed:
        sampler = DistributedSampler(view, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(view, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return DataLoader(view, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers, drop_last=False)


def evaluation_loader(view: SplitView, config: DataConfig) -> DataLoader:
    return DataLoader(view, batch_size=config.eval_batch_size, sampler=SequentialSampler(view), num_workers=config.workers)
