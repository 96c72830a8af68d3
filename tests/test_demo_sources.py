"""The demo raw sources: exact layouts, valid labels, deliberate quirks, and reproducible bytes."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mtlbench.demo import DemoSources, pitvqa, write_demo_sources
from mtlbench.demo.endovis import DEMO_ACTIVITIES, FRAMES_PER_SEQUENCE, RELEASES
from mtlbench.sources.endovis18_vqa import frame_activity, read_actions
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES, ESD_ACTIVITIES, ESD_CLASSES, normalise_name

# pycocotools' decode trips a numpy 2 deprecation on every call; it is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

FRAMES = [f"frame{i:03d}" for i in range(FRAMES_PER_SEQUENCE)]
VQA_SEQUENCES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16}
TEST_SEQUENCES, VAL_SEQUENCES = (1, 5, 16), (15,)
POSITIONS = {"left-top", "right-top", "left-bottom", "right-bottom"}
CLASS_COLOURS = {cls.color for cls in ENDOVIS18_CLASSES}


@pytest.fixture(scope="module")
def progress_calls() -> list[list]:
    return []


@pytest.fixture(scope="module")
def demo(tmp_path_factory, progress_calls) -> DemoSources:
    def progress(description: str, total: int):
        call = [description, total, 0]
        progress_calls.append(call)

        def advance() -> None:
            call[2] += 1

        return advance

    return write_demo_sources(tmp_path_factory.mktemp("demo"), seed=0, progress=progress)


def sequence_dirs(demo: DemoSources) -> dict[int, Path]:
    return {int(d.name.split("_")[1]): d for d in demo.endovis_root.glob("*/seq_*")}


def qa_files(demo: DemoSources) -> dict[int, list[Path]]:
    return {
        int(d.name.split("_")[1]): sorted((d / "vqa" / "Classification").glob("*_QA.txt"))
        for d in demo.vqa_root.glob("seq_*")
    }


def test_returned_paths_and_progress(demo, progress_calls):
    assert demo.endovis_root.is_dir() and demo.vqa_root.is_dir() and demo.esd_images_dir.is_dir()
    assert demo.esd_coco_file.is_file() and demo.esd_activities_file.is_file()
    assert (demo.fess_root / "landmarks.txt").is_file() and (demo.pitvqa_root / "QA").is_dir()
    # one bar per source, each advanced to its total: EndoVis frames, ESD frames, FESS video frames, PitVQA frames
    assert [(total, done) for _, total, done in progress_calls][:2] == [(15 * FRAMES_PER_SEQUENCE,) * 2, (90, 90)]
    assert len(progress_calls) == 4 and all(total == done > 0 for _, total, done in progress_calls)
    assert progress_calls[3][1] == len(pitvqa.VIDEOS) * pitvqa.SECONDS_PER_VIDEO


def test_endovis_layout_is_exactly_the_release_layout(demo):
    assert sorted(p.name for p in demo.endovis_root.iterdir()) == sorted(RELEASES)
    for release, numbers in RELEASES.items():
        assert sorted(p.name for p in (demo.endovis_root / release).iterdir()) == sorted(f"seq_{n}" for n in numbers)
    assert sorted(sequence_dirs(demo)) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16]
    for number, seq in sequence_dirs(demo).items():
        assert sorted(p.name for p in seq.iterdir()) == [
            "camera_calibration.txt",
            "labels",
            "labels.json",
            "left_frames",
            "right_frames",
        ]
        expected = [f"{name}.png" for name in FRAMES]
        assert sorted(p.name for p in (seq / "left_frames").iterdir()) == expected
        assert sorted(p.name for p in (seq / "right_frames").iterdir()) == expected
        labels = sorted(p.name for p in (seq / "labels").iterdir())
        assert labels == [n for n in expected if not (number == 16 and n == "frame007.png")]


def test_label_pngs_use_only_class_colours_and_match_frame_size(demo):
    seen = set()
    for seq in sequence_dirs(demo).values():
        for label_path in sorted((seq / "labels").glob("*.png")):
            with Image.open(label_path) as label, Image.open(seq / "left_frames" / label_path.name) as frame:
                assert label.mode == "RGB" and frame.mode == "RGB"
                assert label.size == frame.size == (320, 256)
                rgb = np.asarray(label).astype(np.uint32)
            packed = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
            colours = {(int(p) >> 16, (int(p) >> 8) & 255, int(p) & 255) for p in packed}
            assert colours <= CLASS_COLOURS, label_path
            seen |= colours
    # Unlike the real training data (no ultrasound-probe pixels), the demo shows every class.
    assert seen == CLASS_COLOURS


def test_labels_json_lists_all_classes_with_real_name_variants(demo):
    for seq in sequence_dirs(demo).values():
        entries = json.loads((seq / "labels.json").read_text(encoding="utf-8"))
        assert [(e["classid"], tuple(e["color"])) for e in entries] == [(c.id, c.color) for c in ENDOVIS18_CLASSES]
        names = {e["classid"]: e["name"] for e in entries}
        if seq.parent.name in ("miccai_challenge_release_3", "miccai_challenge_release_4"):
            assert (names[0], names[10]) == ("background", "small intestines")
        else:
            assert (names[0], names[10]) == ("background-tissue", "small-intestine")


def test_vqa_layout_and_quirks(demo):
    assert set(qa_files(demo)) == VQA_SEQUENCES
    for number in VQA_SEQUENCES:
        vqa = demo.vqa_root / f"seq_{number}" / "vqa"
        for kind in ("Classification", "Sentence"):
            names = sorted(p.name for p in (vqa / kind).iterdir())
            missing = {"frame011"} if number == 2 else set()
            assert names == [f"{f}_QA.txt" for f in FRAMES if f not in missing]
    assert not (demo.vqa_root / "seq_13").exists()


def test_qa_files_hold_organ_actions_and_positions(demo):
    for files in qa_files(demo).values():
        for path in files:
            lines = [line.split("|") for line in path.read_text(encoding="utf-8").splitlines()]
            assert all(len(parts) == 2 for parts in lines)
            answers = [answer for _, answer in lines]
            actions = [a for a in answers if a in ENDOVIS18_ACTIONS]
            positions = [a for a in answers if a in POSITIONS]
            assert answers.count("kidney") == 1
            assert 1 <= len(actions) == len(positions) <= 3
            assert len(answers) == 1 + len(actions) + len(positions)
            assert set(actions) <= set(DEMO_ACTIVITIES)
            assert read_actions(path) == actions
            sentences = (path.parent.parent / "Sentence" / path.name).read_text(encoding="utf-8").splitlines()
            assert [s.split("|")[0] for s in sentences] == [q for q, _ in lines]


def test_activities_spread_over_sequences_and_splits(demo):
    activities = {
        number: [frame_activity(read_actions(path)) for path in files] for number, files in qa_files(demo).items()
    }
    sequences_with = defaultdict(set)
    for number, frames in activities.items():
        for activity in frames:
            sequences_with[activity].add(number)
        assert len(set(frames)) >= 4, number
    assert set(sequences_with) == set(DEMO_ACTIVITIES)
    assert all(len(numbers) >= 5 for numbers in sequences_with.values())
    for split in (TEST_SEQUENCES, VAL_SEQUENCES):
        assert len({a for n in split for a in activities[n]}) >= 5
    assert {a for n in TEST_SEQUENCES for a in activities[n]} == set(DEMO_ACTIVITIES)


def test_multi_instrument_frames_and_ties_occur(demo):
    instrument_counts, ties = Counter(), 0
    for files in qa_files(demo).values():
        for path in files:
            actions = read_actions(path)
            instrument_counts[len(actions)] += 1
            busy = Counter(a for a in actions if a != "Idle")
            if len(busy) > 1 and len(set(busy.values())) == 1:
                ties += 1
    assert instrument_counts[2] > 10 and instrument_counts[3] > 0
    assert ties > 0


def test_esd_coco_decodes_and_categories_normalise_to_esd_classes(demo):
    coco = COCO(str(demo.esd_coco_file))
    esd_keys = {normalise_name(cls.name) for cls in ESD_CLASSES[1:]}
    names = [c["name"] for c in coco.dataset["categories"]]
    assert {normalise_name(n) for n in names} == esd_keys
    assert len(set(names) - {cls.name for cls in ESD_CLASSES}) >= 5, "spellings should mostly differ from ESD_CLASSES"
    images = coco.dataset["images"]
    assert len(images) == 90
    assert [a["id"] for a in coco.dataset["annotations"]] == list(range(1, len(coco.dataset["annotations"]) + 1))
    for image in images:
        assert (demo.esd_images_dir / image["file_name"]).is_file()
        video = image["file_name"].split("_")[0]
        assert ("video" in image) == (video in ("esd01", "esd02", "esd03"))
        assert image.get("video", video) == video
    kinds = Counter()
    for annotation in coco.dataset["annotations"]:
        mask = coco.annToMask(annotation)
        assert mask.shape == (256, 320) and mask.sum() > 0
        assert annotation["iscrowd"] == 0
        assert annotation["area"] == pytest.approx(mask.sum(), abs=1)
        kinds["rle" if isinstance(annotation["segmentation"], dict) else "polygon"] += 1
    assert kinds["rle"] > 0 and kinds["polygon"] > 5 * kinds["rle"]
    with Image.open(demo.esd_images_dir / images[0]["file_name"]) as first:
        assert first.mode == "RGB" and first.size == (320, 256)


def test_esd_objects_follow_the_activity(demo):
    coco = COCO(str(demo.esd_coco_file))
    key_of = {c["id"]: normalise_name(c["name"]) for c in coco.dataset["categories"]}
    interval_of = read_intervals(demo.esd_activities_file)
    expected = {
        "Marking": {"markingarea", "electricknife"},
        "Circumferential Incision": {"incisionarea", "markingarea", "electricknife"},
        "Submucosal Dissection": {"mucosalflaps", "fpcwforceps", "fpcwknife"},
    }
    overlapping = 0
    for image in coco.dataset["images"]:
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert {key_of[a["category_id"]] for a in annotations} == expected[activity_of(image["file_name"], interval_of)]
        masks = [coco.annToMask(a).astype(bool) for a in annotations]
        overlapping += any((a & b).any() for i, a in enumerate(masks) for b in masks[i + 1 :])
    assert overlapping > 0


def read_intervals(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    intervals = defaultdict(list)
    for row in rows:
        intervals[row["video"]].append((int(row["start_frame"]), int(row["end_frame"]), row["activity"]))
    return intervals


def activity_of(file_name: str, intervals: dict[str, list[tuple[int, int, str]]]) -> str:
    video, frame = Path(file_name).stem.split("_")
    matches = [activity for start, end, activity in intervals[video] if start <= int(frame) <= end]
    assert len(matches) == 1, file_name
    return matches[0]


def test_esd_activity_intervals_cover_every_image_once(demo):
    assert (
        demo.esd_activities_file.read_text(encoding="utf-8").splitlines()[0] == "video,start_frame,end_frame,activity"
    )
    intervals = read_intervals(demo.esd_activities_file)
    assert sorted(intervals) == [f"esd{n:02d}" for n in range(1, 7)]
    for rows in intervals.values():
        assert [activity for _, _, activity in sorted(rows)] == list(ESD_ACTIVITIES)
    names = sorted(p.name for p in demo.esd_images_dir.iterdir())
    assert names == sorted(f"esd{v:02d}_{f * 30:06d}.png" for v in range(1, 7) for f in range(15))
    for name in names:
        activity_of(name, intervals)


def test_rle_segmentations_are_compressed_strings(demo):
    annotations = json.loads(demo.esd_coco_file.read_text(encoding="utf-8"))["annotations"]
    for annotation in annotations:
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, dict):
            assert isinstance(segmentation["counts"], str) and segmentation["size"] == [256, 320]
            rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
            assert mask_utils.decode(rle).sum() == annotation["area"]


# Slow (40 s: a second full generation); the ENT-FESS and PitVQA generators' byte-identity stays in the default run.
@pytest.mark.slow
def test_same_seed_gives_identical_bytes(demo, tmp_path):
    again = write_demo_sources(tmp_path / "again", seed=0)
    root = demo.endovis_root.parent
    assert tree_digest(root) == tree_digest(again.endovis_root.parent)
