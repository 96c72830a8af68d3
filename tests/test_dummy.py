"""Dummy submissions: valid, deterministic, and what their kind promises."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import class_scores, predicted_classes, tree_digest
from test_submission import HEIGHT, TEST_IDS, WIDTH, build_tiny_dataset

from mtlbench import pngio
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.evaluation.dummy import write_dummy_submission
from mtlbench.evaluation.submission import open_submission


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> DatasetCard:
    return build_tiny_dataset(tmp_path_factory.mktemp("dataset") / "tiny")


def _masks(submission) -> dict[str, np.ndarray]:
    return {sample_id: pngio.read_class_mask(path) for sample_id, path in submission.predictions.get("segmentation").items()}


def test_constant_predicts_the_most_frequent_train_activity_and_class(card: DatasetCard, tmp_path: Path):
    out = write_dummy_submission(card, "test", tmp_path / "constant")
    with open_submission(out, card, "test") as submission:
        assert submission.tasks == ("activity", "segmentation") and submission.missing == {}
        # train: activities idle, idle, suturing; pixels: half background in every frame.
        assert predicted_classes(submission) == {sample_id: 0 for sample_id in TEST_IDS}
        assert all(scores.tolist() == [1.0, 0.0, 0.0] for scores in class_scores(submission).values())
        assert all(mask.shape == (HEIGHT, WIDTH) and not mask.any() for mask in _masks(submission).values())
        assert submission.meta == {
            "method": "dummy-constant",
            "dataset_fingerprint": card.fingerprint,
            "split": "test",
            "seed": None,
            "parameters": {"kind": "constant"},
            "parameter_count": 0,
        }


def test_constant_falls_back_to_id_0_without_train_counts(card: DatasetCard, tmp_path: Path):
    statistics = copy.deepcopy(card.statistics)
    statistics["train"]["tasks"]["activity"]["counts"] = {name: 0 for name in card.activities}
    statistics["train"]["tasks"]["segmentation"]["pixel_counts"] = {"background": 0, "tool": 0, "tissue": 5}
    out = write_dummy_submission(replace(card, statistics=statistics), "test", tmp_path / "constant")
    with open_submission(out, card, "test") as submission:
        assert set(predicted_classes(submission).values()) == {0}
        assert all((mask == 2).all() for mask in _masks(submission).values())


def test_random_is_valid_consistent_and_tiled(card: DatasetCard, tmp_path: Path):
    out = write_dummy_submission(card, "val", tmp_path / "random", kind="random", seed=3)
    with open_submission(out, card, "val") as submission:
        for sample_id, activity in predicted_classes(submission).items():
            scores = class_scores(submission)[sample_id]
            assert activity == int(np.argmax(scores)) and scores.sum() == pytest.approx(1.0)
        for mask in _masks(submission).values():
            assert mask.shape == (HEIGHT, WIDTH) and mask.max() < len(card.classes)
            assert (mask[:16, :16] == mask[0, 0]).all()
        assert submission.meta["seed"] == 3 and submission.meta["method"] == "dummy-random"


@pytest.mark.parametrize("kind", ["constant", "random"])
def test_the_same_inputs_give_the_same_bytes(card: DatasetCard, tmp_path: Path, kind: str):
    first = write_dummy_submission(card, "test", tmp_path / "first", kind=kind, seed=7)
    second = write_dummy_submission(card, "test", tmp_path / "second", kind=kind, seed=7)
    assert tree_digest(first) == tree_digest(second)


def test_random_depends_on_the_seed_and_not_on_the_tasks(card: DatasetCard, tmp_path: Path):
    both = write_dummy_submission(card, "test", tmp_path / "both", kind="random", seed=1)
    activity_only = write_dummy_submission(
        card, "test", tmp_path / "activity", kind="random", seed=1, tasks=("activity",)
    )
    other_seed = write_dummy_submission(card, "test", tmp_path / "other", kind="random", seed=2)
    assert (both / "activities.csv").read_bytes() == (activity_only / "activities.csv").read_bytes()
    assert (both / "activities.csv").read_bytes() != (other_seed / "activities.csv").read_bytes()
    assert not (activity_only / "masks").exists()
    with open_submission(activity_only, card, "test") as submission:
        assert submission.tasks == ("activity",)


def test_segmentation_only(card: DatasetCard, tmp_path: Path):
    out = write_dummy_submission(card, "test", tmp_path / "masks", tasks=("segmentation",))
    with open_submission(out, card, "test") as submission:
        assert submission.tasks == ("segmentation",) and not (out / "activities.csv").exists()


def test_bad_requests_are_refused(card: DatasetCard, tmp_path: Path):
    with pytest.raises(InputError, match="'zero' is not a dummy kind"):
        write_dummy_submission(card, "test", tmp_path / "a", kind="zero")
    with pytest.raises(InputError, match="choose one or more of activity, segmentation"):
        write_dummy_submission(card, "test", tmp_path / "b", tasks=("depth",))
    with pytest.raises(InputError, match="no split 'dev'"):
        write_dummy_submission(card, "dev", tmp_path / "c")
    write_dummy_submission(card, "test", tmp_path / "d")
    with pytest.raises(InputError, match="not empty"):
        write_dummy_submission(card, "test", tmp_path / "d")
    write_dummy_submission(card, "test", tmp_path / "d", kind="random", overwrite=True)
    assert not any(path.name.startswith(".") for path in tmp_path.iterdir())
