"""Training and evaluation views of a dataset split, and their loaders.

Items cross from the loader's worker processes to the training loop as uint8: the transfer
through shared memory, not the arithmetic, is most of what a cached frame costs, and uint8 is a
quarter of float32's bytes (an eighth of int64's for masks). Each batch is converted as the loop
takes it (`ModelBatches`), on the model's device when the loader is given it: a GPU then receives
uint8 and normalises there, and the loop's process does no per-pixel work.

A view's training loader serves all its epochs and its worker processes persist: starting them
(a fork of the training process each) costs about as much as loading a thousand cached frames.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from baselines.augment import augment, load_size, sample_generator
from baselines.config import DataConfig
from mtlbench.dataset.cache import open_cache
from mtlbench.dataset.loader import NORMALISATIONS, SplitDataset
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.progress import ProgressFn, silent


class SplitView(Dataset):
    """Items {image (3, h, w) uint8, mask (h, w) uint8, activity, index} at the load size
    (data.load_size, else data.input_size); the loaders below give batches as the model takes them.

    Frames come from the prepared cache of the split (data.cache; mtlbench/dataset/cache.py,
    built here when it is missing) or are decoded and resized by the same rule (data.resize):
    both give the same uint8 pixels, so the same items. With `train=True` each item is augmented
    (data.augment) from those pixels, a crop of the loaded frame resized back to the load size,
    with randomness fixed by (seed, epoch, index); `set_epoch` moves to the next epoch's
    augmentations (also in loader workers started earlier: the epoch is in shared memory).
    `source.samples` are the split's samples in item order.
    """

    def __init__(self, card: DatasetCard, split: str, config: DataConfig, train: bool, seed: int, progress: ProgressFn = silent):
        size = load_size(config)
        self.source = SplitDataset(card, split, size=size, resize=config.resize)
        self.frames = (
            open_cache(card, split, size, config.resize, config.cache_dir, option="data.cache_dir", progress=progress)
            if config.cache
            else self.source
        )
        self.config = config
        self.train = train
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.training_batches: ModelBatches | None = None  # made by the first training_loader call
        # (x / 255 - mean) / std as one multiply and one subtraction
        mean, std = NORMALISATIONS[config.normalise] if config.normalise else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.scale = (1 / (255 * torch.tensor(std))).view(1, 3, 1, 1)
        self.shift = (torch.tensor(mean) / torch.tensor(std)).view(1, 3, 1, 1)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "training_batches": None}  # a spawned loader worker takes the view without its loader

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        frame, mask = self.frames.frame_pair(index)
        image, mask = torch.from_numpy(np.array(frame)), torch.from_numpy(np.array(mask))  # copies: the cache is read-only
        if self.train and self.config.augment:
            image, mask = augment(image, mask, self.config, sample_generator(self.seed, self.epoch, index))
        return {"image": image, "mask": mask, "activity": self.source.samples[index].activity_id, "index": index}

    def model_batch(self, batch: dict, device: torch.device | None = None) -> dict:
        """A collated batch of items as the model takes it, on `device` (None: where it is): image
        (B, 3, h, w) float32 from [0, 1], normalised (data.normalise); mask (B, h, w) int64;
        activity (B,); index (B,)."""
        image = batch["image"].to(device).float()
        image = image.mul_(self.scale.to(image.device)).sub_(self.shift.to(image.device))
        return {**batch, "image": image, "mask": batch["mask"].to(device).long()}


class ModelBatches:
    """A loader of a view's items whose batches come converted by `view.model_batch`, on `device`."""

    def __init__(self, view: SplitView, loader: DataLoader, device: torch.device | None):
        self.view = view
        self.loader = loader
        self.device = device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict]:
        return (self.view.model_batch(batch, self.device) for batch in self.loader)


class ShuffledEpochs(Sampler[int]):
    """Every index once per epoch, in an order drawn from (seed, epoch) (RandomSampler's order
    with that seed); `set_epoch` moves on, as DistributedSampler's does."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def training_loader(
    view: SplitView, config: DataConfig, seed: int, epoch: int, distributed: bool, device: torch.device | None = None
) -> ModelBatches:
    """The view's shuffled loader, at `epoch`: its order depends only on (seed, epoch) and, when
    distributed, the rank. The first call makes it (with its settings); later calls move it to
    their epoch."""
    if view.training_batches is None:
        sampler = DistributedSampler(view, shuffle=True, seed=seed) if distributed else ShuffledEpochs(len(view), seed)
        loader = DataLoader(
            view, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers, drop_last=config.drop_last,
            persistent_workers=config.workers > 0,
        )
        view.training_batches = ModelBatches(view, loader, device)
    view.set_epoch(epoch)
    view.training_batches.loader.sampler.set_epoch(epoch)
    return view.training_batches


def evaluation_loader(view: SplitView, config: DataConfig, device: torch.device | None = None) -> ModelBatches:
    loader = DataLoader(view, batch_size=config.eval_batch_size, sampler=SequentialSampler(view), num_workers=config.workers)
    return ModelBatches(view, loader, device)
