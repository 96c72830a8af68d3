"""The dataset folder format: validation on read, fingerprint, verification, the torch loader."""

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import simple_mask
from PIL import Image

from mtlbench import load_dataset
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.options import BuildOptions
from mtlbench.dataset.manifest import read_dataset
from mtlbench.dataset.verify import verify_files
from mtlbench.errors import InputError


@pytest.fixture
def dataset(endovis_source: Path, tmp_path: Path) -> Path:
    return build_mtlendovis(endovis_source, tmp_path / "ds")


# the core columns, then each task's columns in the order dataset.json declares the tasks
HEADER = "sample_id,split,sequence,frame,image,width,height,image_sha256,activity,activity_id,mask,mask_sha256".split(",")


def test_fingerprint_is_sha256_of_the_manifest_sorted_by_sample_id(dataset: Path):
    lines = (dataset / "samples.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    assert header == ",".join(HEADER)
    canonical = "\n".join([header] + sorted(rows)) + "\n"
    assert json.loads((dataset / "dataset.json").read_text())["fingerprint"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_manifest_checksums_match_the_files(dataset: Path):
    card = read_dataset(dataset)
    for sample in card.samples:
        assert hashlib.sha256((dataset / sample.image).read_bytes()).hexdigest() == sample.image_sha256
        assert hashlib.sha256((dataset / sample.mask).read_bytes()).hexdigest() == sample.mask_sha256
    assert verify_files(card) == []


def test_verify_reports_changed_missing_and_unlisted_files(dataset: Path):
    (dataset / "masks" / "seq01_frame000.png").write_bytes(b"not a png")
    (dataset / "images" / "seq02_frame001.png").unlink()
    (dataset / "images" / "intruder.png").write_bytes(b"x")
    problems = verify_files(read_dataset(dataset))
    assert problems == [
        "images/seq02_frame001.png: missing",
        "masks/seq01_frame000.png: sha256 differs from samples.csv",
        "images/intruder.png: not listed in samples.csv",
    ]


def _edit_manifest(dataset: Path, edit) -> None:
    rows = list(csv.reader(io.StringIO((dataset / "samples.csv").read_text())))
    edit(rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (dataset / "samples.csv").write_text(buffer.getvalue())


def _set(row: int, column: str, value: str):
    def edit(rows):
        rows[row][HEADER.index(column)] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(1, "activity_id", "3"), "line 2: activity 'Grasping' / id 3 not in the vocabulary"),
        (_set(1, "split", "holdout"), "line 2: split 'holdout' is not declared"),
        (_set(2, "sample_id", "seq02_frame000"), "line 3: duplicate sample_id 'seq02_frame000'"),
        (_set(1, "sample_id", "../evil"), "is not filesystem-safe"),
        (_set(1, "image", "/etc/passwd"), "must be relative and inside the folder"),
        (_set(1, "width", "ten"), "width 'ten' is not an integer"),
        (_set(1, "image_sha256", "abc"), "image_sha256 is not a sha256 hex digest"),
        (lambda rows: rows[0].__setitem__(0, "id"), "the first columns must be exactly"),
        (lambda rows: rows[1].append("extra"), "line 2: expected 12 fields, found 13"),
        (lambda rows: rows.pop(), "samples per split"),
        (_set(1, "frame", "frame999"), "does not match the fingerprint"),
    ],
)
def test_a_damaged_manifest_is_refused_with_its_line(dataset: Path, edit, message):
    _edit_manifest(dataset, edit)
    with pytest.raises(InputError, match=message) as caught:
        read_dataset(dataset)
    assert str(caught.value).startswith(f"{dataset / 'samples.csv'}: ")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda meta: meta.update(format="other"), "not an mtlbench dataset description"),
        (lambda meta: meta.update(format_version=99), "format_version 99 is not supported"),
        (lambda meta: meta.update(ignore_index=0), "ignore_index must be 255"),
        (lambda meta: meta["tasks"][1]["classes"].pop(0), "classes must be a non-empty list with ids 0..n-1"),
        (lambda meta: meta["tasks"][1]["classes"][1].update(color=[0, 300, 0]), "needs a color"),
        (lambda meta: meta["tasks"][0].update(type="regression"), "unknown task type 'regression' \\(known: classification, multilabel, segmentation, text\\)"),
        (lambda meta: meta["tasks"].append(meta["tasks"][0]), "task names occur twice: activity"),
        (lambda meta: meta["tasks"][0].update(name="Activity"), "task name 'Activity' must be lower-case"),
        (lambda meta: meta["splits"].update(extra={}), "unknown split names"),
        (lambda meta: meta.pop("fingerprint"), "field 'fingerprint' missing"),
    ],
)
def test_a_damaged_description_is_refused(dataset: Path, edit, message):
    meta = json.loads((dataset / "dataset.json").read_text())
    edit(meta)
    (dataset / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=message):
        read_dataset(dataset)


def test_not_a_dataset(tmp_path: Path):
    with pytest.raises(InputError, match="dataset folder not found"):
        read_dataset(tmp_path / "nothing")
    with pytest.raises(InputError, match="dataset.json: missing"):
        read_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_dataset(tmp_path)


def test_loader_yields_tensors_at_original_size(dataset: Path):
    split = load_dataset(dataset, "test")
    assert len(split) == 3
    item = split[0]
    assert item["sample_id"] == "seq01_frame000"
    assert item["image"].shape == (3, 8, 10) and item["image"].dtype == torch.float32
    assert torch.equal(item["mask"], torch.from_numpy(simple_mask()).long())
    original = np.asarray(Image.open(dataset / "images" / "seq01_frame000.png"))
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), original / 255.0, rtol=0, atol=1e-6)
    assert item["activity"] == 1
    assert split.activity_names[1] == "Grasping" and split.class_names[4] == "kidney-parenchyma"


def test_loader_resizes_masks_by_nearest_neighbour_and_normalises(dataset: Path):
    plain = load_dataset(dataset, "val")[0]
    resized = load_dataset(dataset, "val", size=(4, 5), normalise="imagenet")[0]
    assert resized["image"].shape == (3, 4, 5)
    # halving picks the source pixel under each output pixel's centre: index 2j + 1 (as Pillow does)
    np.testing.assert_array_equal(resized["mask"].numpy(), plain["mask"].numpy()[1::2, 1::2])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    unnormalised = load_dataset(dataset, "val", size=(4, 5))[0]["image"]
    assert torch.allclose(resized["image"], (unnormalised - mean) / std, atol=1e-6)


def test_loader_batches_with_a_dataloader(dataset: Path):
    loader = torch.utils.data.DataLoader(load_dataset(dataset, "train"), batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 8, 10)
    assert batch["activity"].tolist() == [1, 1]
    assert batch["sample_id"] == ["seq02_frame000", "seq02_frame001"]


def test_loader_rejects_an_unknown_split(dataset: Path):
    with pytest.raises(InputError, match="no split 'dev'"):
        load_dataset(dataset, "dev")


def test_an_interrupted_build_leaves_nothing(endovis_source: Path, tmp_path: Path):
    def interrupt_after_two_frames(description: str, total: int):
        done = []

        def advance():
            done.append(1)
            if len(done) == 2:
                raise KeyboardInterrupt

        return advance

    with pytest.raises(KeyboardInterrupt):
        build_mtlendovis(endovis_source, tmp_path / "ds", options=BuildOptions(progress=interrupt_after_two_frames))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endovis"]
