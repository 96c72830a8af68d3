"""MTLESD from COCO instances + an activity table, on tiny hand-built sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import frame_image, tree_digest
from PIL import Image
from pycocotools import mask as mask_utils

from mtlbench.builders.mtlesd import build_mtlesd_from_coco
from mtlbench.builders.options import BuildOptions
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.sources.coco_instances import read_coco
from mtlbench.taxonomies import ESD_ACTIVITIES, ESD_CLASSES

# pycocotools' RLE decoding predates numpy 2's copy keyword; the warning is theirs, not ours.

H, W = 8, 10
CATEGORIES = [
    {"id": 1, "name": "marking_area"},
    {"id": 2, "name": "Electric knife"},
    {"id": 4, "name": "Mucosal Flaps"},
    {"id": 5, "name": "FPCW-forceps"},
    {"id": 9, "name": "background"},
]
SQUARE = [2, 2, 6, 2, 6, 6, 2, 6]  # pixel-edge polygon: rows 2..5, cols 2..5 (16 px)


def rectangle_rle(rows: slice, cols: slice) -> dict:
    area = np.zeros((H, W), dtype=np.uint8)
    area[rows, cols] = 1
    rle = mask_utils.encode(np.asfortranarray(area))
    return {"counts": rle["counts"].decode("ascii"), "size": [H, W]}


def write_frame(path: Path, seed: int, size: tuple[int, int] = (H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame_image(*size, seed)).save(path)


def make_source(
    root: Path,
    videos: dict[str, int],
    *,
    activities_csv: str | None = None,
    annotations=None,
    categories=CATEGORIES,
) -> dict:
    """Frames <video>_<n>.png (n = 10, 20, ...), one square annotation each unless given,
    and an interval table giving every video activity 'Marking' unless given."""
    images, default_annotations = [], []
    for video, count in sorted(videos.items()):
        for index in range(count):
            image_id = len(images) + 1
            file_name = f"{video}_{10 * (index + 1):06d}.png"
            write_frame(root / "images" / file_name, image_id)
            images.append({"id": image_id, "file_name": file_name, "width": W, "height": H})
            default_annotations.append(
                {"id": image_id, "image_id": image_id, "category_id": 1, "segmentation": [SQUARE]}
            )
    coco = {"images": images, "annotations": default_annotations if annotations is None else annotations, "categories": categories}
    (root / "coco.json").write_text(json.dumps(coco))
    if activities_csv is None:
        activities_csv = "video,start_frame,end_frame,activity\n" + "".join(f"{v},0,1000,Marking\n" for v in sorted(videos))
    (root / "activities.csv").write_text(activities_csv)
    return coco


def build(root: Path, out_name: str = "out", **kwargs) -> Path:
    return build_mtlesd_from_coco(root / "coco.json", root / "images", root / "activities.csv", root / out_name, **kwargs)


def write_split(root: Path, splits: dict) -> Path:
    path = root / "split.json"
    path.write_text(json.dumps(splits))
    return path


THREE_VIDEOS = {"esd01": 1, "esd02": 1, "esd03": 1}
SPLIT = {"train": ["esd01"], "val": ["esd02"], "test": ["esd03"]}


def mask_of(card, sample_id: str) -> np.ndarray:
    sample = next(s for s in card.samples if s.sample_id == sample_id)
    return np.asarray(Image.open(card.root / sample.mask))


def test_overlap_paints_smaller_instances_on_top(tmp_path):
    annotations = [
        # The smallest first and with the lowest id: file order must not decide what is on top.
        {"id": 1, "image_id": 1, "category_id": 2, "segmentation": {"counts": [6, 2, 6, 2, 64], "size": [H, W]}},
        {"id": 2, "image_id": 1, "category_id": 5, "segmentation": [SQUARE]},
        {"id": 3, "image_id": 1, "category_id": 4, "segmentation": rectangle_rle(slice(1, 7), slice(1, 9))},
        {"id": 4, "image_id": 2, "category_id": 1, "segmentation": [SQUARE]},
    ]
    make_source(tmp_path, THREE_VIDEOS, annotations=annotations)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    expected = np.zeros((H, W), dtype=np.uint8)
    expected[1:7, 1:9] = 4  # Mucosal Flaps, 48 px, painted first
    expected[2:6, 2:6] = 5  # FPCW Forceps square, 16 px
    expected[6:8, 0:2] = 2  # Electric Knife, 4 px (uncompressed RLE), over the flaps at (6, 1)
    assert np.array_equal(mask_of(card, "esd01_000010"), expected)
    marking = np.zeros((H, W), dtype=np.uint8)
    marking[2:6, 2:6] = 1
    assert np.array_equal(mask_of(card, "esd02_000010"), marking)
    assert np.array_equal(mask_of(card, "esd03_000010"), np.zeros((H, W), dtype=np.uint8))
    assert [c.name for c in card.classes] == [c.name for c in ESD_CLASSES]
    assert card.meta["build_parameters"]["overlap_rule"].startswith("instances painted largest")


def test_equal_areas_higher_annotation_id_on_top(tmp_path):
    shifted = [3, 2, 7, 2, 7, 6, 3, 6]
    annotations = [
        {"id": 7, "image_id": 1, "category_id": 2, "segmentation": [SQUARE]},
        {"id": 3, "image_id": 1, "category_id": 5, "segmentation": [shifted]},
    ]
    make_source(tmp_path, THREE_VIDEOS, annotations=annotations)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    assert mask_of(card, "esd01_000010")[3, 4] == 2


def test_unknown_categories_are_all_listed(tmp_path):
    make_source(tmp_path, THREE_VIDEOS, categories=CATEGORIES + [{"id": 20, "name": "Suction"}, {"id": 21, "name": "Needle"}])
    with pytest.raises(InputError) as error:
        build(tmp_path)
    assert error.value.where == str(tmp_path / "coco.json")
    assert "'Suction'" in error.value.problem and "'Needle'" in error.value.problem


def test_missing_image_files_are_counted_and_listed(tmp_path):
    make_source(tmp_path, {"esd01": 3, "esd02": 1, "esd03": 1})
    (tmp_path / "images" / "esd01_000010.png").unlink()
    (tmp_path / "images" / "esd01_000030.png").unlink()
    with pytest.raises(InputError) as error:
        build(tmp_path)
    assert error.value.where == str(tmp_path / "coco.json")
    assert "2 image file(s) not found" in error.value.problem
    assert "esd01_000010.png" in error.value.problem and "esd01_000030.png" in error.value.problem
    assert not (tmp_path / "out").exists()


def test_activity_outside_the_vocabulary(tmp_path):
    csv = "video,start_frame,end_frame,activity\nesd01,0,100,Marking\nesd02,0,100,Suturing\n"
    make_source(tmp_path, THREE_VIDEOS, activities_csv=csv)
    with pytest.raises(InputError) as error:
        build(tmp_path)
    assert error.value.where == str(tmp_path / "activities.csv")
    assert "line 3" in error.value.problem and "'Suturing'" in error.value.problem


def test_interval_table_uses_the_frame_number(tmp_path):
    csv = (
        "Video, Start_Frame ,end_frame,activity\n"
        "esd01,0,15,marking\n"
        "esd01,16,20,circumferential_incision\n"
        "esd02,0,100,SUBMUCOSAL-DISSECTION\n"
        "esd03,0,100,Marking\n"
    )
    make_source(tmp_path, {"esd01": 2, "esd02": 1, "esd03": 1}, activities_csv=csv)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    activity = {s.sample_id: s.activity for s in card.samples}
    assert activity == {
        "esd01_000010": "Marking",
        "esd01_000020": "Circumferential Incision",
        "esd02_000010": "Submucosal Dissection",
        "esd03_000010": "Marking",
    }
    assert card.meta["build_parameters"]["activity_rule"].startswith("rows video,start_frame")


def test_file_name_table(tmp_path):
    csv = "file_name,activity\nesd01_000010.png,Submucosal Dissection\nesd02_000010.png,Marking\nesd03_000010.png,Marking\n"
    make_source(tmp_path, THREE_VIDEOS, activities_csv=csv)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    assert {s.sample_id: s.activity_id for s in card.samples} == {"esd01_000010": 2, "esd02_000010": 0, "esd03_000010": 0}


def test_overlapping_intervals_with_different_activities(tmp_path):
    csv = (
        "video,start_frame,end_frame,activity\n"
        "esd01,0,100,Marking\n"
        "esd01,10,20,Marking\n"
        "esd01,50,60,Circumferential Incision\n"
    )
    make_source(tmp_path, THREE_VIDEOS, activities_csv=csv)
    with pytest.raises(InputError) as error:
        build(tmp_path)
    assert error.value.where == str(tmp_path / "activities.csv")
    assert "lines 2 and 4" in error.value.problem


def test_unknown_table_header(tmp_path):
    make_source(tmp_path, THREE_VIDEOS, activities_csv="frame,label\n1,Marking\n")
    with pytest.raises(InputError, match="header must be"):
        build(tmp_path)


def test_frames_without_activity_are_skipped_and_reported(tmp_path):
    csv = (
        "video,start_frame,end_frame,activity\n"
        "esd01,0,10,Marking\n"  # esd01's frame 20 has none
        "esd02,0,100,Marking\n"
        "esd03,0,100,Marking\n"
        "esd09,0,100,Marking\n"  # no such video
    )
    make_source(tmp_path, {"esd01": 2, "esd02": 1, "esd03": 1}, activities_csv=csv)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    assert "esd01_000020" not in {s.sample_id for s in card.samples}
    skipped = card.meta["skipped"]
    assert skipped["no activity label"] == {"count": 1, "examples": ["esd01_000020.png"]}
    assert skipped["activity row names no image"] == {"count": 1, "examples": ["video esd09 (line 5)"]}


def test_split_file_keeps_videos_whole(tmp_path):
    make_source(tmp_path, {"esd01": 2, "esd02": 2, "esd03": 2, "esd04": 2, "esd05": 1})
    split = write_split(tmp_path, {"train": ["esd01", "esd02"], "val": ["esd03"], "test": ["esd04", "esd77"]})
    card = read_dataset(build(tmp_path, split_file=split))
    assert {(s.sequence, s.split) for s in card.samples} == {
        ("esd01", "train"),
        ("esd02", "train"),
        ("esd03", "val"),
        ("esd04", "test"),
    }
    assert len(card.samples) == 8
    assert card.meta["skipped"]["video not in the split file"] == {"count": 1, "examples": ["esd05"]}
    assert card.meta["skipped"]["split file names a video without labelled frames"]["examples"] == ["esd77"]
    recorded = card.meta["build_parameters"]["split"]
    assert recorded["source"] == "split file" and recorded["test"] == ["esd04", "esd77"]


def test_default_split_is_deterministic_and_keeps_videos_whole(tmp_path):
    videos = {f"esd{n:02d}": 2 for n in range(1, 11)}
    make_source(tmp_path, videos)
    first = read_dataset(build(tmp_path, "a", seed=3))
    second = read_dataset(build(tmp_path, "b", seed=3))
    split_of = {(s.sequence, s.split) for s in first.samples}
    assert split_of == {(s.sequence, s.split) for s in second.samples}
    assert len({sequence for sequence, _ in split_of}) == len(split_of) == 10  # one split per video
    sizes = {name: len(first.meta["splits"][name]["sequences"]) for name in ("train", "val", "test")}
    assert sizes == {"train": 7, "val": 1, "test": 2}
    recorded = first.meta["build_parameters"]["split"]
    assert recorded["source"] == "default_video_split" and recorded["seed"] == 3
    assert recorded["test"] == first.meta["splits"]["test"]["sequences"]


def test_rebuild_is_byte_identical(tmp_path):
    make_source(tmp_path, {"esd01": 2, "esd02": 2, "esd03": 2, "esd04": 1})
    first = build(tmp_path, "a")
    second = build(tmp_path, "b", options=BuildOptions(workers=2))
    hashes = tree_digest(first)
    assert len(hashes) == 2 + 2 * 7
    assert hashes == tree_digest(second)
    assert str(tmp_path) not in (first / "dataset.json").read_text()


def test_coco_size_must_match_the_image_file(tmp_path):
    make_source(tmp_path, THREE_VIDEOS)
    write_frame(tmp_path / "images" / "esd02_000010.png", 0, size=(H, W + 2))
    with pytest.raises(InputError) as error:
        build(tmp_path, split_file=write_split(tmp_path, SPLIT))
    assert str(tmp_path / "coco.json") in error.value.where and "esd02_000010.png" in error.value.where
    assert "10x8" in error.value.problem and "12x8" in error.value.problem
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_jpeg_frames_are_stored_as_png(tmp_path):
    coco = make_source(tmp_path, THREE_VIDEOS)
    write_frame(tmp_path / "images" / "esd01_000010.jpg", 5)
    coco["images"][0]["file_name"] = "esd01_000010.jpg"
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    sample = next(s for s in card.samples if s.sample_id == "esd01_000010")
    with Image.open(card.root / sample.image) as stored:
        assert (stored.format, stored.size) == ("PNG", (W, H))


def test_video_and_frame_sources(tmp_path):
    images = [
        {"id": 1, "file_name": "x/a_1.png", "width": W, "height": H, "video": "case7", "frame": 12},
        {"id": 2, "file_name": "esd03/000012.png", "width": W, "height": H},
        {"id": 3, "file_name": "esd03/clip_000013.png", "width": W, "height": H},
        {"id": 4, "file_name": "esd_04_000013.png", "width": W, "height": H},
    ]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": [], "categories": CATEGORIES}))
    parsed = [(image.video, image.frame, image.sample_id) for image in read_coco(path, ESD_CLASSES).images]
    assert parsed == [
        ("case7", "12", "case7_12"),
        ("esd03", "000012", "esd03_000012"),
        ("esd03", "000013", "esd03_000013"),
        ("esd_04", "000013", "esd_04_000013"),
    ]
    images[0] = {"id": 1, "file_name": "frame0001.png", "width": W, "height": H}
    path.write_text(json.dumps({"images": images, "annotations": [], "categories": CATEGORIES}))
    with pytest.raises(InputError, match="no video"):
        read_coco(path, ESD_CLASSES)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"images": [], "categories": []}), "'annotations' missing"),
        (json.dumps({"images": [{"id": 1, "file_name": "a_1.png", "width": W}], "annotations": [], "categories": []}), "'height'"),
        (
            json.dumps(
                {
                    "images": [{"id": 1, "file_name": "a_1.png", "width": W, "height": H}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]}],
                    "categories": CATEGORIES,
                }
            ),
            "at least 6 numbers",
        ),
        (
            json.dumps(
                {
                    "images": [{"id": 1, "file_name": "a_1.png", "width": W, "height": H}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"counts": "x", "size": [H, 3]}}],
                    "categories": CATEGORIES,
                }
            ),
            "RLE size",
        ),
    ],
)
def test_malformed_coco_is_a_one_line_error(tmp_path, text, problem):
    path = tmp_path / "coco.json"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        read_coco(path, ESD_CLASSES)
    assert error.value.where == str(path) and problem in error.value.problem
    assert "\n" not in str(error.value)


def test_build_parameters_and_source(tmp_path):
    make_source(tmp_path, THREE_VIDEOS)
    card = read_dataset(build(tmp_path, split_file=write_split(tmp_path, SPLIT)))
    assert (card.name, card.meta["version"], card.meta["builder"]["version"]) == ("mtlesd", "1.0.0", "1.0.0")
    parameters = card.meta["build_parameters"]
    assert parameters["input_mode"] == "coco" and parameters["seed"] == 0
    assert parameters["class_order"] == [c.name for c in ESD_CLASSES]
    assert list(card.activities) == list(ESD_ACTIVITIES)
    assert card.meta["source"]["counts"]["coco_images"] == 3
    assert set(card.meta["source"]["inputs_sha256"]) == {"coco", "activities", "split_file"}
