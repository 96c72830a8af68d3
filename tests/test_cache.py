"""The prepared cache of a split: built once, reopened memory-mapped, rebuilt when anything differs,
whole or absent, and the same items through the reference runners' loader as decoding the PNGs."""

import hashlib
import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.config import DataConfig
from baselines.data import SplitView, evaluation_loader, training_loader
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.dataset import resize
from mtlbench.dataset.cache import CACHE_ENV, MANIFEST, cache_folder, open_cache
from mtlbench.dataset.loader import IMAGENET_MEAN, IMAGENET_STD, SplitDataset
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError

SIZE = (6, 7)  # the demo frames are 8x10: both axes shrink


@pytest.fixture
def card(endovis_source: Path, tmp_path: Path):
    return read_dataset(build_mtlendovis(endovis_source, tmp_path / "ds"))


class Builds:
    """A progress function that counts the builds it is asked to report, and keeps every description."""

    def __init__(self, on_frame=lambda: None):
        self.descriptions = []
        self.on_frame = on_frame

    @property
    def count(self) -> int:
        return sum(description.startswith("Caching") for description in self.descriptions)

    def __call__(self, description: str, total: int):
        self.descriptions.append(description)
        return lambda note=None: self.on_frame()


def digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_a_cache_is_built_once_then_opened_memory_mapped(card, tmp_path: Path):
    builds = Builds()
    prepared = open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds)
    folder = tmp_path / "cache" / card.fingerprint / "train-6x7-antialias"
    assert prepared.folder == folder and sorted(p.name for p in folder.iterdir()) == ["cache.json", "images.npy", "masks.npy"]
    assert isinstance(prepared.images, np.memmap) and isinstance(prepared.masks, np.memmap)
    assert prepared.images.shape == (3, 3, 6, 7) and prepared.masks.shape == (3, 6, 7)
    assert prepared.images.dtype == prepared.masks.dtype == np.uint8 and not prepared.images.flags.writeable
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["fingerprint"] == card.fingerprint and manifest["split"] == "train" and manifest["size"] == [6, 7]
    assert manifest["samples"] == [sample.sample_id for sample in card.split("train")]
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    again = open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds)
    assert builds.count == 1 and {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    assert np.array_equal(again.images, prepared.images)


@pytest.mark.parametrize("rule", ["antialias", "pil"])
@pytest.mark.parametrize("size", [SIZE, (16, 20)])
def test_the_cache_holds_the_pixels_that_decoding_gives(card, tmp_path: Path, rule: str, size):
    prepared = open_cache(card, "val", size, rule, tmp_path / "cache", workers=1)
    decoded, original = SplitDataset(card, "val", size=size, resize=rule), SplitDataset(card, "val")
    for index in range(len(decoded)):
        image, mask = decoded.frame_pair(index)
        assert image.shape == (3, *size) and np.array_equal(prepared.images[index], image)
        assert np.array_equal(prepared.masks[index], mask)
        assert set(np.unique(mask)) <= set(np.unique(original.frame_pair(index)[1]))  # class ids never blended


def test_a_rebuild_gives_the_same_bytes_with_any_number_of_workers(card, tmp_path: Path):
    first = open_cache(card, "test", SIZE, "antialias", tmp_path / "one", workers=1).folder
    second = open_cache(card, "test", SIZE, "antialias", tmp_path / "two", workers=2).folder
    assert digests(first) == digests(second)


def corrupt_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text("{")


def other_fingerprint(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "fingerprint": "0" * 64}))


def other_samples(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "samples": manifest["samples"][::-1]}))


def truncated_images(folder: Path) -> None:
    data = (folder / "images.npy").read_bytes()
    (folder / "images.npy").write_bytes(data[:-5])


def wrong_shape(folder: Path) -> None:
    np.save(folder / "masks.npy", np.zeros((3, 7, 6), dtype=np.uint8))


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / MANIFEST).unlink(),
        corrupt_manifest,
        other_fingerprint,
        other_samples,
        truncated_images,
        lambda folder: (folder / "masks.npy").unlink(),
        wrong_shape,
    ],
    ids=["no manifest", "corrupt manifest", "other fingerprint", "other samples", "truncated", "no masks", "wrong shape"],
)
def test_a_cache_that_differs_or_is_damaged_is_rebuilt(card, tmp_path: Path, damage):
    folder = open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1).folder
    original = digests(folder)
    damage(folder)
    builds = Builds()
    prepared = open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds)
    assert builds.count == 1 and digests(folder) == original
    assert prepared.images.shape == (3, 3, 6, 7)


def test_a_cache_made_by_another_resize_implementation_is_rebuilt(card, tmp_path: Path, monkeypatch):
    open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1)
    monkeypatch.setitem(resize.RULE_LIBRARIES, "antialias", "torch 0.0")
    builds = Builds()
    open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds)
    assert builds.count == 1


def test_each_split_size_and_rule_has_its_own_cache(card, tmp_path: Path):
    builds = Builds()
    for split, size, rule in (("train", SIZE, "antialias"), ("train", (5, 5), "antialias"), ("train", SIZE, "pil"), ("val", SIZE, "antialias")):
        open_cache(card, split, size, rule, tmp_path / "cache", workers=1, progress=builds)
    names = sorted(p.name for p in (tmp_path / "cache" / card.fingerprint).iterdir() if not p.name.startswith("."))
    assert builds.count == 4 and names == ["train-5x5-antialias", "train-6x7-antialias", "train-6x7-pil", "val-6x7-antialias"]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_build_are_ignored_and_removed(card, tmp_path: Path):
    parent = tmp_path / "cache" / card.fingerprint
    leftover = parent / f".train-6x7-antialias.partial-{dead_pid()}"
    leftover.mkdir(parents=True)
    (leftover / "images.npy").write_bytes(b"half a frame")
    prepared = open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1)
    assert not leftover.exists() and prepared.images.shape == (3, 3, 6, 7)


def test_an_interrupted_build_leaves_no_cache(card, tmp_path: Path):
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=Builds(on_frame=interrupt))
    assert [p.name for p in (tmp_path / "cache" / card.fingerprint).iterdir()] == [".train-6x7-antialias.lock"]
    builds = Builds()
    open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds)
    assert builds.count == 1


def test_concurrent_builders_build_once(card, tmp_path: Path):
    building = threading.Event()
    builds = Builds(on_frame=lambda: (building.set(), time.sleep(0.2)))  # the first build runs on while the second starts
    opened, errors = [], []

    def open_it():
        try:
            opened.append(open_cache(card, "train", SIZE, "antialias", tmp_path / "cache", workers=1, progress=builds))
        except Exception as exc:  # reported below: an assertion in a thread would be lost
            errors.append(exc)

    first, second = threading.Thread(target=open_it), threading.Thread(target=open_it)
    first.start()
    assert building.wait(timeout=60)
    second.start()
    first.join()
    second.join()
    assert not errors and builds.count == 1 and len(opened) == 2
    assert any(description.startswith("Waiting for another process to build") for description in builds.descriptions)
    assert np.array_equal(opened[0].images, opened[1].images)


def test_an_unusable_cache_folder_is_refused_with_one_line(card, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = DataConfig(input_size=SIZE, cache=True, cache_dir=str(blocker))
    with pytest.raises(InputError) as caught:
        SplitView(card, "train", config, train=False, seed=0)
    assert "data.cache_dir" in str(caught.value) and str(blocker) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(InputError, match="unknown resize rule 'bicubic'"):
        open_cache(card, "train", SIZE, "bicubic", tmp_path / "cache")


def test_the_cache_folder_comes_from_the_setting_the_environment_or_home(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_folder(tmp_path / "set", "data.cache_dir") == (tmp_path / "set", "data.cache_dir")
    assert cache_folder(None, "data.cache_dir") == (tmp_path / "env", "$MTLBENCH_CACHE")
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder(None, "data.cache_dir")[0] == tmp_path / "home" / ".cache" / "mtlbench"


def test_an_opened_cache_pickles_as_its_folder(card, tmp_path: Path):
    prepared = open_cache(card, "train", (64, 64), "antialias", tmp_path / "cache", workers=1)
    data = pickle.dumps(prepared)
    assert len(data) < prepared.images.nbytes
    copy = pickle.loads(data)
    assert isinstance(copy.images, np.memmap) and np.array_equal(copy.images, prepared.images)


def views(card, tmp_path: Path, train: bool, **settings) -> tuple[SplitView, SplitView]:
    uncached, cached = (
        SplitView(card, "train", DataConfig(input_size=SIZE, cache=cache, cache_dir=str(tmp_path / "cache"), **settings), train=train, seed=3)
        for cache in (False, True)
    )
    return uncached, cached


@pytest.mark.parametrize("rule", ["antialias", "pil"])
@pytest.mark.parametrize("augment", [False, True])
def test_cached_and_decoded_items_are_identical(card, tmp_path: Path, rule: str, augment: bool):
    uncached, cached = views(card, tmp_path, train=True, resize=rule, augment=augment, colour_jitter=0.3)
    assert cached.source.samples == uncached.source.samples
    for view in (uncached, cached):
        view.set_epoch(2)
    for index in range(len(cached)):
        a, b = uncached[index], cached[index]
        assert a.keys() == b.keys() == {"image", "mask", "activity", "index"}
        assert a["image"].shape == (3, *SIZE) and a["image"].dtype == torch.uint8 and a["mask"].dtype == torch.uint8
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) and a["activity"] == b["activity"]


def test_batches_come_normalised_as_the_model_takes_them(card, tmp_path: Path):
    uncached, cached = views(card, tmp_path, train=False, batch_size=2, eval_batch_size=2, workers=0)
    config = cached.config
    plain = next(iter(evaluation_loader(uncached, config)))
    batch = next(iter(evaluation_loader(cached, config)))
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (2, 3, *SIZE)
    assert batch["mask"].dtype == torch.int64 and batch["mask"].shape == (2, *SIZE)
    assert torch.equal(plain["image"], batch["image"]) and torch.equal(plain["mask"], batch["mask"])
    pixels = torch.from_numpy(np.stack([cached.frames.images[i] for i in (0, 1)])).float() / 255
    expected = (pixels - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(batch["image"], expected, atol=1e-5)


def test_the_training_loader_drops_the_last_incomplete_batch_when_asked(card, tmp_path: Path):
    for drop_last, batches in ((False, [2, 1]), (True, [2])):
        config = DataConfig(input_size=SIZE, batch_size=2, workers=0, drop_last=drop_last)
        view = SplitView(card, "train", config, train=True, seed=0)
        loader = training_loader(view, config, seed=0, epoch=0, distributed=False)
        assert len(loader) == len(batches) and [len(batch["index"]) for batch in loader] == batches


def test_loader_workers_give_the_same_batches_every_epoch(card, tmp_path: Path):
    batches = {}
    for workers in (0, 2):
        config = DataConfig(input_size=SIZE, cache=True, cache_dir=str(tmp_path / "cache"), batch_size=2, workers=workers)
        view = SplitView(card, "train", config, train=True, seed=0)
        batches[workers] = [
            [batch["image"] for batch in training_loader(view, config, seed=0, epoch=epoch, distributed=False)] for epoch in range(3)
        ]
    assert all(torch.equal(a, b) for epoch in range(3) for a, b in zip(batches[0][epoch], batches[2][epoch], strict=True))
    assert not torch.equal(batches[2][1][0], batches[2][2][0])  # each epoch its own augmentation, also in persistent workers
