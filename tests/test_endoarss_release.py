"""Importing folders in the EndoARSS release layout, with and without an mtlbench export marker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import frame_image, simple_mask, write_qa, write_sequence
from PIL import Image

from mtlbench.builders.endoarss_release import build_from_release
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.mtlesd import build_mtlesd_from_release
from mtlbench.builders.options import BuildOptions
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.splits import hash_order
from mtlbench.taxonomies import ESD_ACTIVITIES, ESD_CLASSES, IGNORE_INDEX

H, W = 4, 6
RAMP = np.arange(H * W, dtype=np.uint8).reshape(H, W) % 8  # raw values 0..7


def add_file(root: Path, split: str, activity: str, name: str, raw_mask: np.ndarray = RAMP) -> None:
    folder = root / split / activity
    (folder / "image").mkdir(parents=True, exist_ok=True)
    (folder / "mask").mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame_image(*raw_mask.shape, seed=len(name))).save(folder / "image" / f"{name}.png")
    Image.fromarray(raw_mask).save(folder / "mask" / f"{name}.png")


def make_release(root: Path, with_val: bool = True) -> Path:
    add_file(root, "train", "1", "esd01_0001")
    add_file(root, "train", "2", "esd01_0002")
    add_file(root, "test", "3", "esd02_0001")
    if with_val:
        add_file(root, "val", "1", "esd03_0001")
    return root


def write_marker(root: Path, classes: list[str], activities: list[str]) -> None:
    marker = {
        "format": "mtlbench-endoarss-export",
        "format_version": 1,
        "dataset": "original",
        "version": "2.0.0",
        "fingerprint": "f" * 64,
        "classes": [{"id": i, "name": name, "color": [i, 2 * i, 3 * i]} for i, name in enumerate(classes)],
        "activities": [{"id": i, "name": name} for i, name in enumerate(activities)],
        "ignore_raw_value": 0,
    }
    (root / "mtlbench-export.json").write_text(json.dumps(marker))


def stored_mask(card, sample_id: str) -> np.ndarray:
    sample = next(s for s in card.samples if s.sample_id == sample_id)
    return np.asarray(Image.open(card.root / sample.mask))


def test_release_semantics_with_the_assumed_esd_order(tmp_path):
    release = make_release(tmp_path / "release")
    card = read_dataset(build_mtlesd_from_release(release, tmp_path / "out"))
    expected = np.where(RAMP > 0, RAMP - 1, 0)  # raw 0 and 1 -> background, raw k -> k-1
    assert np.array_equal(stored_mask(card, "esd01_0001"), expected)
    assert card.classes == ESD_CLASSES and card.activities == ESD_ACTIVITIES
    assert {s.sample_id: (s.split, s.activity_id) for s in card.samples} == {
        "esd01_0001": ("train", 0),
        "esd01_0002": ("train", 1),
        "esd03_0001": ("val", 0),
        "esd02_0001": ("test", 2),
    }
    assert (card.samples[0].sequence, card.samples[0].frame) == ("esd01", "0001")
    parameters = card.meta["build_parameters"]
    assert "ASSUMED" in parameters["class_names_from"]
    assert parameters["splits"]["val"] == "release val/ folder"
    assert card.meta["source"]["mask_files"] == {"train": 2, "val": 1, "test": 1}


def test_marker_names_and_zero_as_ignore(tmp_path):
    release = make_release(tmp_path / "release")
    write_marker(release, ["bg", "tool", "tissue", "a", "b", "c", "d"], ["one", "two", "three"])
    card = read_dataset(build_from_release(release, tmp_path / "out", name="again", class_names=None, activity_names=None))
    expected = np.where(RAMP > 0, RAMP - 1, IGNORE_INDEX)  # raw 0 -> ignore, raw 1 -> background
    assert np.array_equal(stored_mask(card, "esd01_0001"), expected)
    assert [c.name for c in card.classes][:3] == ["bg", "tool", "tissue"]
    assert card.classes[2].color == (2, 4, 6)
    assert card.activities == ("one", "two", "three")
    assert card.meta["version"] == "2.0.0"
    assert card.meta["source"]["export_marker"]["dataset"] == "original"


def test_reimporting_an_export_reproduces_the_dataset(tmp_path):
    release = make_release(tmp_path / "release")
    write_marker(release, [c.name for c in ESD_CLASSES], list(ESD_ACTIVITIES))
    original = read_dataset(build_mtlesd_from_release(release, tmp_path / "original", options=BuildOptions(exports=("endoarss",))))
    assert IGNORE_INDEX in stored_mask(original, "esd01_0001")
    again = read_dataset(build_mtlesd_from_release(original.root / "exports" / "endoarss", tmp_path / "again"))
    assert again.fingerprint == original.fingerprint
    for sample in original.samples:
        assert np.array_equal(stored_mask(again, sample.sample_id), stored_mask(original, sample.sample_id))



def test_reimporting_the_export_of_a_ten_class_mtlendovis_gives_back_its_data(tmp_path):
    source = tmp_path / "endovis"
    for number in (1, 2, 15):
        mask = simple_mask(height=4, width=24, classes=tuple(range(12)))
        mask[0, 0] = 100  # a colour no class has: ignore, which the export writes as raw 0
        write_sequence(source, number, {"frame000": mask, "frame001": mask[::-1].copy()}, extra_colours={100: (1, 2, 3)})
        for frame in ("frame000", "frame001"):
            write_qa(source, number, frame, {"prograsp_forceps": "Retraction"})
    exports = BuildOptions(exports=("endoarss",))
    original = read_dataset(build_mtlendovis(source, tmp_path / "original", classes="release", options=exports))
    again = read_dataset(
        build_from_release(original.root / "exports" / "endoarss", tmp_path / "again", name="copy", class_names=None, activity_names=None)
    )
    assert again.classes == original.classes and len(again.classes) == 10
    assert again.activities == original.activities
    assert IGNORE_INDEX in stored_mask(original, "seq01_frame000")
    by_id = {sample.sample_id: sample for sample in again.samples}
    assert sorted(by_id) == sorted(sample.sample_id for sample in original.samples)
    for sample in original.samples:
        copy = by_id[sample.sample_id]
        assert (copy.split, copy.activity_id, copy.image_sha256) == (sample.split, sample.activity_id, sample.image_sha256)
        assert np.array_equal(stored_mask(again, sample.sample_id), stored_mask(original, sample.sample_id))


def test_an_export_without_val_is_not_carved(tmp_path):
    release = tmp_path / "release"
    for sequence in ("a", "b", "c"):
        add_file(release, "train", "1", f"{sequence}_1")
    write_marker(release, ["bg", "a", "b", "c", "d", "e", "f"], ["one"])
    only_train = BuildOptions(allow_empty_splits=True)
    card = read_dataset(build_from_release(release, tmp_path / "out", name="x", class_names=None, activity_names=None, options=only_train))
    assert {s.split for s in card.samples} == {"train"}


def test_explicit_names_override_the_marker(tmp_path):
    release = make_release(tmp_path / "release")
    write_marker(release, ["bg", "a", "b", "c", "d", "e", "f"], ["one", "two", "three"])
    names = [f"class {i}" for i in range(8)]
    card = read_dataset(build_from_release(release, tmp_path / "out", name="x", class_names=names, activity_names=None))
    assert [c.name for c in card.classes] == names
    # black, then hues stepped by the golden ratio conjugate (HSV saturation 0.8, value 1)
    assert [c.color for c in card.classes] == [
        (0, 0, 0), (51, 111, 255), (170, 255, 51), (255, 51, 230), (51, 255, 221), (255, 161, 51), (102, 51, 255), (60, 255, 51)
    ]
    assert card.activities == ("one", "two", "three")
    assert stored_mask(card, "esd01_0001")[0, 0] == IGNORE_INDEX  # the marker still decides the encoding


def test_esd_names_get_esd_colours(tmp_path):
    release = make_release(tmp_path / "release")
    names = ["Background", "marking_area", "electric-knife", "Incision Area", "mucosal flaps", "FPCW Forceps", "FPCW Knife"]
    card = read_dataset(build_from_release(release, tmp_path / "out", name="x", class_names=names, activity_names=ESD_ACTIVITIES))
    assert [c.color for c in card.classes] == [c.color for c in ESD_CLASSES]


def test_generic_importer_does_not_guess_names(tmp_path):
    release = make_release(tmp_path / "release")
    with pytest.raises(InputError, match="cannot guess"):
        build_from_release(release, tmp_path / "out", name="x", class_names=None, activity_names=ESD_ACTIVITIES)


def test_val_carved_by_sequence_group(tmp_path):
    release = tmp_path / "release"
    for sequence in ("a", "b", "c", "d"):
        for frame in ("1", "2"):
            add_file(release, "train", "1", f"{sequence}_{frame}")
    add_file(release, "test", "1", "e_1")
    card = read_dataset(build_mtlesd_from_release(release, tmp_path / "out", seed=5))
    chosen = hash_order(["a", "b", "c", "d"], 5)[0]
    assert {s.sample_id for s in card.split("val")} == {f"{chosen}_1", f"{chosen}_2"}
    rule = card.meta["build_parameters"]["splits"]["val"]
    assert rule["unit"].startswith("sequence") and rule["sequences"] == [chosen] and rule["files"] == 2


def test_val_carved_by_files_when_few_sequences(tmp_path):
    release = tmp_path / "release"
    for frame in range(10):
        add_file(release, "train", "1", f"{'ab'[frame % 2]}_{frame}")
    add_file(release, "test", "1", "e_1")
    card = read_dataset(build_mtlesd_from_release(release, tmp_path / "out", seed=1))
    train_ids = [f"{'ab'[frame % 2]}_{frame}" for frame in range(10)]
    assert [s.sample_id for s in card.split("val")] == [hash_order(train_ids, 1)[0]]
    assert len(card.split("train")) == 9
    assert card.meta["build_parameters"]["splits"]["val"]["unit"].startswith("file")


def test_duplicate_stems_name_both_files(tmp_path):
    release = make_release(tmp_path / "release")
    add_file(release, "test", "2", "esd01_0001")
    with pytest.raises(InputError) as error:
        build_mtlesd_from_release(release, tmp_path / "out")
    assert "esd01_0001" in error.value.where and str(release / "train" / "1") in error.value.problem


def test_value_out_of_range(tmp_path):
    release = make_release(tmp_path / "release")
    add_file(release, "train", "1", "bad_1", np.full((H, W), 9, dtype=np.uint8))
    with pytest.raises(InputError) as error:
        build_mtlesd_from_release(release, tmp_path / "out")
    assert error.value.where == str(release / "train" / "1" / "mask" / "bad_1.png")
    assert "raw value 9" in error.value.problem
    assert not (tmp_path / "out").exists()


def test_non_png_files_are_ignored_and_reported(tmp_path):
    release = make_release(tmp_path / "release")
    mask_dir = release / "train" / "1" / "mask"
    (mask_dir / "notes.txt").write_text("x")
    Image.fromarray(RAMP).save(mask_dir / "esd09_0001.jpg")
    (mask_dir / "._esd01_0001.png").write_bytes(b"resource fork")
    card = read_dataset(build_mtlesd_from_release(release, tmp_path / "out"))
    assert len(card.samples) == 4
    skipped = next(iter(card.meta["skipped"].values()))
    assert skipped["count"] == 3 and "train/1/mask/notes.txt" in skipped["examples"]


def test_missing_image(tmp_path):
    release = make_release(tmp_path / "release")
    (release / "test" / "3" / "image" / "esd02_0001.png").unlink()
    with pytest.raises(InputError, match="no image with the same name"):
        build_mtlesd_from_release(release, tmp_path / "out")


@pytest.mark.parametrize("folder, problem", [("4", "only 3 activities"), ("0", "numbers from 1"), ("two", "numbers from 1")])
def test_activity_folder_numbering(tmp_path, folder, problem):
    release = make_release(tmp_path / "release")
    add_file(release, "train", folder, "x_1")
    with pytest.raises(InputError) as error:
        build_mtlesd_from_release(release, tmp_path / "out")
    assert error.value.where == str(release / "train" / folder) and problem in error.value.problem


def test_existing_target_is_not_touched_without_overwrite(tmp_path):
    release = make_release(tmp_path / "release")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        build_mtlesd_from_release(release, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "release"]
    read_dataset(build_mtlesd_from_release(release, out, options=BuildOptions(overwrite=True)))


def test_corrupt_png_leaves_no_output(tmp_path):
    release = make_release(tmp_path / "release")
    (release / "train" / "2" / "mask" / "esd01_0002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError) as error:
        build_mtlesd_from_release(release, tmp_path / "out")
    assert "esd01_0002.png" in error.value.where and "corrupt" in error.value.problem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_release_needs_train_and_test(tmp_path):
    release = tmp_path / "release"
    add_file(release, "train", "1", "a_1")
    with pytest.raises(InputError, match="needs train/ and test/"):
        build_mtlesd_from_release(release, tmp_path / "out")


def test_bad_marker(tmp_path):
    release = make_release(tmp_path / "release")
    (release / "mtlbench-export.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError) as error:
        build_mtlesd_from_release(release, tmp_path / "out")
    assert error.value.where == str(release / "mtlbench-export.json")
