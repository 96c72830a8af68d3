"""Dummy submissions: a floor every method must beat, and a template of the format.

`constant` predicts the train split's most frequent activity and class everywhere; `random`
draws them from a seeded generator. Both go through one writer, so they follow
docs/format-submission.md exactly, and the same inputs always give the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.submission_writer import SubmissionWriter
from mtlbench.tasks import TASKS

DUMMY_KINDS = ("constant", "random")
# Random masks are constant on tiles of this size, so that their PNGs stay small.
MASK_TILE = 16


class _Guesser(Protocol):
    def scores(self, sample: Sample) -> np.ndarray: ...

    def mask(self, sample: Sample) -> np.ndarray: ...


class _ConstantGuesser:
    """The train split's most frequent activity (one-hot scores) and most frequent class."""

    def __init__(self, card: DatasetCard):
        train = card.meta["splits"].get("train", {})
        self._activity = _most_frequent(train.get("activity_counts", {}), card.activities)
        self._class_id = _most_frequent(train.get("pixel_counts", {}), tuple(cls.name for cls in card.classes))
        self._num_activities = len(card.activities)

    def scores(self, sample: Sample) -> np.ndarray:
        return np.eye(self._num_activities)[self._activity]

    def mask(self, sample: Sample) -> np.ndarray:
        return np.full((sample.height, sample.width), self._class_id, dtype=np.uint8)


class _RandomGuesser:
    """Dirichlet(1) scores and tiles of uniform class ids, from two independent seeded streams.

    Separate streams keep the activity predictions the same whether or not masks are written.
    """

    def __init__(self, card: DatasetCard, seed: int):
        activity_seed, mask_seed = np.random.SeedSequence(seed).spawn(2)
        self._activity_rng = np.random.default_rng(activity_seed)
        self._mask_rng = np.random.default_rng(mask_seed)
        self._num_activities = len(card.activities)
        self._num_classes = len(card.classes)

    def scores(self, sample: Sample) -> np.ndarray:
        # Dirichlet(1) is exchangeable, so its argmax (the predicted activity) is uniform.
        return self._activity_rng.dirichlet(np.ones(self._num_activities))

    def mask(self, sample: Sample) -> np.ndarray:
        tile_rows, tile_columns = math.ceil(sample.height / MASK_TILE), math.ceil(sample.width / MASK_TILE)
        tiles = self._mask_rng.integers(0, self._num_classes, size=(tile_rows, tile_columns), dtype=np.uint8)
        return np.repeat(np.repeat(tiles, MASK_TILE, axis=0), MASK_TILE, axis=1)[: sample.height, : sample.width]


def _most_frequent(counts: dict[str, int], names: tuple[str, ...]) -> int:
    """Id of the name with the highest count; the lowest id wins ties, so no counts gives 0."""
    return int(np.argmax([counts.get(name, 0) for name in names]))


def write_dummy_submission(
    card: DatasetCard,
    split: str,
    out: Path,
    *,
    kind: str = "constant",
    seed: int = 0,
    tasks: Sequence[str] = TASKS,
    overwrite: bool = False,
) -> Path:
    """Write a valid `kind` submission for `split` of `card` into the folder `out`; returns `out`."""
    if kind not in DUMMY_KINDS:
        raise InputError("--kind", f"{kind!r} is not a dummy kind (choose from: {', '.join(DUMMY_KINDS)})")
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise InputError("tasks", f"choose one or more of {', '.join(TASKS)} (got: {', '.join(tasks) or 'none'})")
    samples = card.split(split)
    if not samples:
        raise InputError(card.root / "dataset.json", f"split {split!r} has no samples to predict")
    guesser: _Guesser = _ConstantGuesser(card) if kind == "constant" else _RandomGuesser(card, seed)
    meta = {
        "method": f"dummy-{kind}",
        "seed": seed if kind == "random" else None,  # null where nothing is random, as in dataset.json
        "parameters": {"kind": kind},
        "parameter_count": 0,
    }
    with SubmissionWriter(card, split, Path(out), meta, overwrite=overwrite, option="--write-dummy") as writer:
        for sample in samples:
            # Both streams are drawn for every sample in the same order, whatever the tasks.
            scores, mask = guesser.scores(sample), guesser.mask(sample)
            writer.add(
                sample.sample_id,
                scores=scores if "activity" in tasks else None,
                mask=mask if "segmentation" in tasks else None,
            )
    return Path(out)
