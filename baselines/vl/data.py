"""Batches for the vision-language runners: images at the model's input size, label targets, the
context text tokenised for the text encoder, and each text target as word ids for the decoder.

The context text of a frame joins the context fields of its text tasks ("keyword: ... |
previous: ..."), in the order the dataset declares them; every text task of the frame is
conditioned on it. Frames are not augmented: flips would swap the left and right anatomy the
texts name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from baselines.vl.vocabulary import WordVocabulary
from mtlbench.dataset.loader import SplitDataset
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.tasks.base import Task

CONTEXT_SEPARATOR = " | "
# Padding in the labels: not a token id, so that a vocabulary whose padding token is also its end
# token (GPT-2's <|endoftext|>) still learns where a text ends.
IGNORE_LABEL = -100


def context_text(item: dict, tasks: tuple[Task, ...]) -> str:
    parts = [f"{field}: {item[f'{task.name}.{field}']}" for task in tasks if task.kind == "text" for field in task.context]
    return CONTEXT_SEPARATOR.join(part for part in parts if not part.endswith(": "))


@dataclass
class Collate:
    """Turns loader items into one batch dict (picklable, so loader workers can run it)."""

    tasks: tuple[Task, ...]
    vocabulary: WordVocabulary
    tokenizer: object | None  # tokenizers.Tokenizer of the text encoder; None: no text encoder input
    max_length: int

    def __call__(self, items: list[dict]) -> dict:
        batch: dict = {"image": torch.stack([item["image"] for item in items]), "sample_id": [item["sample_id"] for item in items]}
        contexts = [context_text(item, self.tasks) for item in items]
        batch["context"] = contexts
        if self.tokenizer is not None:
            encodings = self.tokenizer.encode_batch(contexts)
            length = max(len(encoding.ids) for encoding in encodings)
            ids = torch.zeros(len(items), length, dtype=torch.long)
            mask = torch.zeros(len(items), length, dtype=torch.long)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
                mask[row, : len(encoding.ids)] = 1
            batch["context_ids"], batch["context_mask"] = ids, mask
        for task in self.tasks:
            if task.kind == "multilabel":
                batch[task.name] = torch.from_numpy(np.stack([item[task.name] for item in items]))
            elif task.kind == "classification":
                batch[task.name] = torch.tensor([item[task.name] for item in items], dtype=torch.long)
            elif task.kind == "text":
                batch[task.name] = self.targets([item[task.name] for item in items])
        return batch

    def targets(self, texts: list[str]) -> dict[str, Tensor]:
        """Teacher forcing: decoder input [BOS, w1, ..., wn] (padded with PAD) and labels
        [w1, ..., wn, EOS] (padded with IGNORE_LABEL)."""
        encoded = [self.vocabulary.encode(text, self.max_length) for text in texts]
        length = max(len(ids) for ids in encoded)
        inputs = torch.full((len(texts), length), self.vocabulary.pad, dtype=torch.long)
        labels = torch.full((len(texts), length), IGNORE_LABEL, dtype=torch.long)
        for row, ids in enumerate(encoded):
            labels[row, : len(ids)] = torch.tensor(ids)
            inputs[row, : len(ids)] = torch.tensor([self.vocabulary.bos, *ids[:-1]])
        return {"inputs": inputs, "labels": labels}


def split_view(card: DatasetCard, split: str, input_size: tuple[int, int], normalise: str | None) -> SplitDataset:
    return SplitDataset(card, split, size=tuple(input_size), normalise=normalise)


def vl_training_loader(view: SplitDataset, collate: Collate, batch_size: int, workers: int, seed: int, epoch: int, distributed: bool) -> DataLoader:
    if distributed:
        sampler = DistributedSampler(view, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(view, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return DataLoader(view, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate)


def vl_evaluation_loader(view: SplitDataset, collate: Collate, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(view, batch_size=batch_size, sampler=SequentialSampler(view), num_workers=workers, collate_fn=collate)
