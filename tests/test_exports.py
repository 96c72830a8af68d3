"""The endoarss, coco and hf exports of a tiny dataset built in the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GridMask, SeededImage, in_memory_spec, tree_digest
from PIL import Image

from mtlbench import pngio
from mtlbench.dataset.manifest import read_dataset
from mtlbench.builders.options import BuildOptions, write_dataset
from mtlbench.dataset.writer import SampleJob
from mtlbench.errors import InputError
from mtlbench.exports import run_exports
from mtlbench.taxonomies import IGNORE_INDEX, SegClass

# pycocotools' RLE decoding predates numpy 2's copy keyword; the warning is theirs, not ours.

X = IGNORE_INDEX
CLASSES = (SegClass(0, "background", (0, 0, 0)), SegClass(1, "tool", (0, 255, 0)), SegClass(2, "tissue", (255, 0, 0)))
ACTIVITIES = ("idle", "cutting", "suturing")  # "cutting" occurs in no frame


# (sample_id, split, activity_id, mask): tissue (2) only in s1_f1, s1_f2 only background, s4_f2 mostly ignore.
FRAMES = (
    ("s1_f1", "train", 0, ((0, 0, 1, 1, 2, 2), (0, 0, 1, 1, 2, 2), (0, X, X, 1, 2, 2), (0, 0, 0, 0, 0, 0))),
    ("s1_f2", "train", 2, ((0,) * 6,) * 4),
    ("s2_f1", "train", 0, ((1, 1, 0, 0, 0, 0), (1, 1, 0, 0, X, X), (0, 0, 0, 0, X, X), (0, 0, 0, 0, 0, 0))),
    ("s3_f1", "val", 2, ((0,) * 6, (0, 1, 1, 1, 1, 0), (0, 1, 1, 1, 1, 0), (0,) * 6)),
    ("s4_f1", "test", 0, ((X, X, 0, 0, 1, 1), (X, X, 0, 0, 1, 1), (0,) * 6, (1,) * 6)),
    ("s4_f2", "test", 2, ((X,) * 6, (X,) * 6, (X, X, X, 0, 0, 0), (X,) * 6)),
)


def _jobs(frames=FRAMES) -> list[SampleJob]:
    return [
        SampleJob(sample_id, split, sample_id.split("_")[0], sample_id.split("_")[1], SeededImage(i, 4, 6), {"activity": activity}, GridMask(rows))
        for i, (sample_id, split, activity, rows) in enumerate(frames)
    ]


SPEC = in_memory_spec(CLASSES, ACTIVITIES)


def _build(out: Path, frames=FRAMES, exports=(), allow_empty_splits=False) -> Path:
    return write_dataset(SPEC, _jobs(frames), [], out, BuildOptions(exports=exports, allow_empty_splits=allow_empty_splits))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A dataset with all three exports; tests only read it."""
    dataset = _build(tmp_path_factory.mktemp("exported") / "tiny")
    run_exports(dataset, ["endoarss", "coco", "hf"])
    return dataset


def _original_mask(dataset: Path, sample_id: str) -> np.ndarray:
    return pngio.read_class_mask(dataset / "masks" / f"{sample_id}.png")


def _files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


# --- endoarss ---------------------------------------------------------------------------------


def test_endoarss_tree_has_one_folder_per_split_and_occurring_activity(exported: Path):
    expected = {"mtlbench-export.json"}
    for sample_id, split, activity, _ in FRAMES:
        expected |= {f"{split}/{activity + 1}/{kind}/{sample_id}.png" for kind in ("image", "mask")}
    assert _files(exported / "exports" / "endoarss") == expected
    assert not (exported / "exports" / "endoarss" / "train" / "2").exists()


def test_endoarss_masks_read_the_release_way_give_our_classes_with_ignore_as_background(exported: Path):
    root = exported / "exports" / "endoarss"
    for sample_id, split, activity, _ in FRAMES:
        raw = np.asarray(Image.open(root / split / str(activity + 1) / "mask" / f"{sample_id}.png").convert("L"))
        release_labels = raw.astype(np.int64)
        release_labels[release_labels > 0] -= 1
        original = _original_mask(exported, sample_id)
        np.testing.assert_array_equal(release_labels, np.where(original == IGNORE_INDEX, 0, original))


def test_endoarss_reimport_with_the_marker_is_exact(exported: Path):
    root = exported / "exports" / "endoarss"
    reimported = {}
    for mask_path in root.glob("*/*/mask/*.png"):
        raw = pngio.read_class_mask(mask_path)
        mask = np.where(raw == 0, IGNORE_INDEX, raw.astype(np.int64) - 1).astype(np.uint8)
        image_bytes = (mask_path.parent.parent / "image" / mask_path.name).read_bytes()
        split, activity = mask_path.parts[-4], int(mask_path.parts[-3]) - 1
        reimported[mask_path.stem] = (split, activity, image_bytes, mask)
    card = read_dataset(exported)
    assert set(reimported) == {sample.sample_id for sample in card.samples}
    for sample in card.samples:
        split, activity, image_bytes, mask = reimported[sample.sample_id]
        assert (split, activity) == (sample.split, sample.activity_id)
        assert image_bytes == (exported / sample.image).read_bytes()
        np.testing.assert_array_equal(mask, _original_mask(exported, sample.sample_id))


def test_endoarss_marker(exported: Path):
    marker = json.loads((exported / "exports" / "endoarss" / "mtlbench-export.json").read_text(encoding="utf-8"))
    assert marker == {
        "format": "mtlbench-endoarss-export",
        "format_version": 1,
        "dataset": "tiny",
        "version": "1.0",
        "fingerprint": read_dataset(exported).fingerprint,
        "classes": [
            {"id": 0, "name": "background", "color": [0, 0, 0]},
            {"id": 1, "name": "tool", "color": [0, 255, 0]},
            {"id": 2, "name": "tissue", "color": [255, 0, 0]},
        ],
        "activities": [{"id": 0, "name": "idle"}, {"id": 1, "name": "cutting"}, {"id": 2, "name": "suturing"}],
        "ignore_raw_value": 0,
    }


# --- coco -------------------------------------------------------------------------------------


def test_coco_annotations_paint_back_the_original_masks(exported: Path):
    from pycocotools.coco import COCO

    card = read_dataset(exported)
    for split in ("train", "val", "test"):
        coco = COCO(str(exported / "exports" / "coco" / f"{split}.json"))
        samples = card.split(split)
        assert sorted(coco.imgs) == list(range(1, len(samples) + 1))
        for image_id, sample in zip(sorted(coco.imgs), samples):
            image = coco.imgs[image_id]
            assert (image["sample_id"], image["activity"], image["activity_id"]) == (
                sample.sample_id,
                sample.activity,
                sample.activity_id,
            )
            assert (exported / image["file_name"]).read_bytes() == (exported / sample.image).read_bytes()
            painted = np.full((image["height"], image["width"]), IGNORE_INDEX, dtype=np.uint8)
            for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
                pixels = coco.annToMask(annotation).astype(bool)
                assert np.all(painted[pixels] == IGNORE_INDEX), "annotations of one image overlap"
                assert annotation["area"] == pixels.sum()
                assert annotation["iscrowd"] == 0
                painted[pixels] = annotation["category_id"] - 1
            np.testing.assert_array_equal(painted, _original_mask(exported, sample.sample_id))


def test_coco_header(exported: Path):
    document = json.loads((exported / "exports" / "coco" / "train.json").read_text(encoding="utf-8"))
    assert list(document) == ["info", "tasks", "categories", "images", "annotations"]
    assert document["info"]["fingerprint"] == read_dataset(exported).fingerprint
    assert not any("date" in key for key in document["info"])
    assert document["tasks"][0] == {"name": "activity", "type": "classification", "classes": list(ACTIVITIES), "submission": "activities.csv"}
    assert document["tasks"][1]["type"] == "segmentation"
    assert {key: document["images"][0][key] for key in ("activity", "activity_id")} == {"activity": ACTIVITIES[0], "activity_id": 0}
    assert document["categories"] == [
        {"id": c.id + 1, "name": c.name, "color": list(c.color), "class_id": c.id} for c in CLASSES
    ]
    tissue = [a for a in document["annotations"] if a["category_id"] == 3]
    assert [(a["image_id"], a["bbox"]) for a in tissue] == [(1, [4.0, 0.0, 2.0, 3.0])]


# --- hf ---------------------------------------------------------------------------------------


def test_hf_rows_equal_the_files(exported: Path):
    import datasets

    loaded = datasets.load_from_disk(str(exported / "exports" / "hf"))
    card = read_dataset(exported)
    assert isinstance(loaded, datasets.DatasetDict)
    assert list(loaded) == ["train", "val", "test"]
    for split, rows in loaded.items():
        samples = card.split(split)
        assert rows.num_rows == len(samples)
        assert rows.features["activity"].names == list(ACTIVITIES)
        assert isinstance(rows.features["image"], datasets.Image) and isinstance(rows.features["mask"], datasets.Image)
        assert json.loads(rows.info.description)["fingerprint"] == card.fingerprint
        raw = rows.cast_column("image", datasets.Image(decode=False)).cast_column("mask", datasets.Image(decode=False))
        for row, raw_row, sample in zip(rows, raw, samples):
            assert (row["sample_id"], row["sequence"], row["frame"], row["activity"]) == (
                sample.sample_id,
                sample.sequence,
                sample.frame,
                sample.activity_id,
            )
            assert raw_row["image"]["bytes"] == (exported / sample.image).read_bytes()
            assert raw_row["mask"]["bytes"] == (exported / sample.mask).read_bytes()
            np.testing.assert_array_equal(np.asarray(row["image"]), pngio.read_rgb(exported / sample.image))
            np.testing.assert_array_equal(np.asarray(row["mask"]), _original_mask(exported, sample.sample_id))
    metadata = json.loads((exported / "exports" / "hf" / "mtlbench.json").read_text(encoding="utf-8"))
    segmentation = next(task for task in metadata["tasks"] if task["type"] == "segmentation")
    assert [c["name"] for c in segmentation["classes"]] == [c.name for c in CLASSES]


def test_every_export_is_byte_identical_across_builds(tmp_path: Path):
    first = _build(tmp_path / "first", exports=("endoarss", "coco", "hf"))
    second = _build(tmp_path / "second")
    run_exports(second, ["hf", "coco", "endoarss"])
    assert tree_digest(first / "exports") == tree_digest(second / "exports")


# --- run_exports and build_dataset ------------------------------------------------------------


def test_unknown_export_name_is_refused_before_any_work(tmp_path: Path):
    dataset = _build(tmp_path / "tiny")
    with pytest.raises(InputError, match="--export: unknown export 'gif' \\(known: coco, endoarss, hf\\)"):
        run_exports(dataset, ["coco", "gif"])
    assert not (dataset / "exports").exists()


def test_exporting_again_replaces_the_export_cleanly(tmp_path: Path):
    dataset = _build(tmp_path / "tiny")
    run_exports(dataset, ["endoarss", "coco"])
    first = tree_digest(dataset / "exports")
    (dataset / "exports" / "endoarss" / "stale.txt").write_text("from an older export")
    advances: dict[str, int] = {}

    def progress(description: str, total: int):
        advances[description] = 0
        return lambda: advances.__setitem__(description, advances[description] + 1)

    run_exports(dataset, ["endoarss", "endoarss"], progress)
    assert tree_digest(dataset / "exports") == first
    assert sorted(path.name for path in (dataset / "exports").iterdir()) == ["coco", "endoarss"]
    assert advances == {"Exporting endoarss": len(FRAMES)}


def test_a_build_writes_exports_inside_the_final_folder_and_skips_empty_splits(tmp_path: Path):
    without_val = tuple(frame for frame in FRAMES if frame[1] != "val")
    dataset = _build(tmp_path / "tiny", without_val, exports=("endoarss", "coco", "hf"), allow_empty_splits=True)
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]
    exports = dataset / "exports"
    assert sorted(path.name for path in exports.iterdir()) == ["coco", "endoarss", "hf"]
    assert sorted(path.name for path in (exports / "endoarss").iterdir()) == ["mtlbench-export.json", "test", "train"]
    assert sorted(path.name for path in (exports / "coco").iterdir()) == ["test.json", "train.json"]
    assert json.loads((exports / "hf" / "dataset_dict.json").read_text())["splits"] == ["train", "test"]


# --- endoarss: the release's loader accepts at most 10 classes ---------------------------------


def _spec_with_classes(count: int):
    classes = tuple(SegClass(i, f"class {i}", (i, i, i)) for i in range(count))
    return in_memory_spec(classes, ACTIVITIES)


def test_endoarss_accepts_ten_classes_the_most_the_release_reads(tmp_path: Path):
    dataset = write_dataset(_spec_with_classes(10), _jobs(), [], tmp_path / "ten", BuildOptions(exports=("endoarss",)))
    assert (dataset / "exports" / "endoarss" / "mtlbench-export.json").is_file()


def test_endoarss_refuses_more_than_ten_classes_before_writing(tmp_path: Path):
    message = (
        "export 'endoarss' cannot be written for tiny: the EndoARSS release's loader accepts at most 10 segmentation "
        "classes (it asserts mask values <= 9 after subtracting 1); this dataset has 11 (MTLEndovis: build it with --classes release)"
    )
    with pytest.raises(InputError) as caught:
        write_dataset(_spec_with_classes(11), _jobs(), [], tmp_path / "eleven", BuildOptions(exports=("coco", "endoarss")))
    assert str(caught.value) == f"--export: {message}"
    assert list(tmp_path.iterdir()) == []
    dataset = write_dataset(_spec_with_classes(11), _jobs(), [], tmp_path / "eleven", BuildOptions())
    with pytest.raises(InputError) as caught:
        run_exports(dataset, ["coco", "endoarss"], where="--to")
    assert str(caught.value) == f"--to: {message}"
    assert not (dataset / "exports").exists()
