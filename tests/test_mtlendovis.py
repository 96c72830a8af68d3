"""The MTLEndovis builder on tiny hand-built EndoVis 2018 / EndoVis-18-VQA sources."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import STANDARD_LABELS_JSON, simple_mask, tree_digest, write_qa, write_sequence
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.options import BuildOptions
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError


# Sources of a sequence or two leave splits empty: said explicitly, as a user must.
SOME_SPLITS = BuildOptions(allow_empty_splits=True)


def read_mask(folder: Path, sample_id: str) -> np.ndarray:
    return np.asarray(Image.open(folder / "masks" / f"{sample_id}.png"))


def test_standard_build(endovis_source: Path, tmp_path: Path):
    out = build_mtlendovis(endovis_source, tmp_path / "ds")
    card = read_dataset(out)
    assert [s.sample_id for s in card.split("train")] == ["seq02_frame000", "seq02_frame001", "seq02_frame002"]
    assert [s.split for s in card.samples] == ["train"] * 3 + ["val"] * 3 + ["test"] * 3
    first = card.split("test")[0]
    assert (first.sequence, first.frame, first.activity, first.activity_id) == ("1", "frame000", "Grasping", 1)
    assert (first.width, first.height) == (10, 8)
    assert len(card.activities) == 13 and card.activities[12] == "Ultrasound_Sensing"
    assert [c.name for c in card.classes][:3] == ["background-tissue", "instrument-shaft", "instrument-clasper"]
    np.testing.assert_array_equal(read_mask(out, "seq01_frame000"), simple_mask())
    meta = card.meta
    train = meta["splits"]["train"]["tasks"]["segmentation"]
    assert train["pixel_counts"]["kidney-parenchyma"] == 3 * 8 * 4  # columns 6..9 of 3 frames
    assert train["pixel_counts"]["instrument-shaft"] == 3 * 8 * 3
    assert meta["splits"]["val"]["tasks"]["activity"]["counts"]["Grasping"] == 3
    assert meta["skipped"]["sequence without VQA annotations"] == {"count": 1, "examples": ["seq_13"]}
    image = np.asarray(Image.open(out / first.image))
    original = np.asarray(Image.open(endovis_source / "miccai_challenge_2018_release_1/seq_1/left_frames/frame000.png"))
    np.testing.assert_array_equal(image, original)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_label_modes_decode_to_the_same_ids(tmp_path: Path, mode: str):
    mask = simple_mask(classes=(0, 2, 3, 5, 9, 10))
    write_sequence(tmp_path / "src", 1, {"frame000": mask}, mode=mode)
    write_qa(tmp_path / "src", 1, "frame000", {"suction": "Suction"})
    out = build_mtlendovis(tmp_path / "src", tmp_path / "ds", options=SOME_SPLITS)
    np.testing.assert_array_equal(read_mask(out, "seq01_frame000"), mask)


def test_colour_not_in_labels_json_becomes_ignore_and_is_counted(tmp_path: Path):
    mask = simple_mask(classes=(0, 4))
    mask[0, :3] = 100  # a colour no class has
    mask[1, 0] = 6  # thread: a real class, but this copy's labels.json leaves it out
    labels_json = [entry for entry in STANDARD_LABELS_JSON if entry["classid"] != 6]
    labels_json[0] = {"name": "background", "color": [0, 0, 0], "classid": 0}  # names vary: colours decide
    write_sequence(tmp_path / "src", 5, {"frame000": mask}, labels_json=labels_json, extra_colours={100: (1, 2, 3)})
    write_qa(tmp_path / "src", 5, "frame000", {"prograsp_forceps": "Idle"})
    out = build_mtlendovis(tmp_path / "src", tmp_path / "ds", options=SOME_SPLITS)
    expected = mask.copy()
    expected[0, :3] = 255
    expected[1, 0] = 255
    np.testing.assert_array_equal(read_mask(out, "seq05_frame000"), expected)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["splits"]["test"]["tasks"]["segmentation"]["ignored_pixels"] == 4
    assert meta["unmapped_label_values"] == [{"value": "#010203", "pixels": 3}, {"value": "#bb9b19", "pixels": 1}]


def test_skips_are_reported_with_counts_and_examples(tmp_path: Path):
    src = tmp_path / "src"
    labels = {f"frame{i:03d}": simple_mask() for i in range(4)}
    write_sequence(src / "release_a", 2, labels, missing_frames=("frame001",))
    (src / "release_a/seq_2/labels/frame003.png").unlink()
    for frame in ("frame000", "frame001", "frame003"):  # frame002 has no QA file
        write_qa(src / "vqa", 2, frame, {"bipolar_forceps": "Retraction"})
    out = build_mtlendovis(src, tmp_path / "ds", vqa=src / "vqa", options=SOME_SPLITS)
    card = read_dataset(out)
    assert [s.sample_id for s in card.samples] == ["seq02_frame000"]
    skipped = card.meta["skipped"]
    assert skipped["label PNG without frame"] == {"count": 1, "examples": ["seq_2/frame001"]}
    assert skipped["frame without QA file"] == {"count": 1, "examples": ["seq_2/frame002"]}
    assert skipped["frame without label PNG"] == {"count": 1, "examples": ["seq_2/frame003"]}
    assert skipped["sequence of the split definition not found in the source"]["count"] == 13


def test_ties_between_instruments_follow_the_action_order(tmp_path: Path):
    src = tmp_path / "src"
    write_sequence(src, 3, {"frame000": simple_mask(), "frame001": simple_mask(), "frame002": simple_mask()})
    write_qa(src, 3, "frame000", {"monopolar_curved_scissors": "Cutting", "prograsp_forceps": "Retraction"})
    write_qa(src, 3, "frame001", {"a": "Idle", "b": "Idle", "c": "Idle"})
    write_qa(src, 3, "frame002", {"a": "Cauterization", "b": "Cauterization", "c": "Grasping"})
    card = read_dataset(build_mtlendovis(src, tmp_path / "ds", options=SOME_SPLITS))
    assert [s.activity for s in card.samples] == ["Retraction", "Idle", "Cauterization"]


def test_split_file_overrides_the_default(endovis_source: Path, tmp_path: Path):
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [1], "val": [15], "test": ["2"]}))
    card = read_dataset(build_mtlendovis(endovis_source, tmp_path / "ds", split_file=split_file))
    assert card.meta["splits"]["train"]["sequences"] == ["1"]
    assert card.meta["splits"]["val"]["sequences"] == ["15"]
    assert card.meta["build_parameters"]["split_definition"] == {"train": [1], "val": [15], "test": [2]}


def test_a_split_file_that_leaves_a_split_empty_needs_the_option(endovis_source: Path, tmp_path: Path):
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [1, 15], "test": ["2"]}))
    with pytest.raises(InputError, match="split\\(s\\) 'val' would have no samples") as caught:
        build_mtlendovis(endovis_source, tmp_path / "ds", split_file=split_file)
    assert caught.value.where == str(split_file)
    card = read_dataset(build_mtlendovis(endovis_source, tmp_path / "ds", split_file=split_file, options=SOME_SPLITS))
    assert card.meta["splits"]["val"]["samples"] == 0
    assert card.meta["build_parameters"]["split_definition"] == {"train": [1, 15], "val": [], "test": [2]}


def test_split_file_with_a_sequence_twice_is_refused(endovis_source: Path, tmp_path: Path):
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [1, 2], "test": [2]}))
    with pytest.raises(InputError, match="splits.json: sequence '2' is in both 'train' and 'test'"):
        build_mtlendovis(endovis_source, tmp_path / "ds", split_file=split_file)


def test_rebuild_is_byte_identical_also_with_workers(endovis_source: Path, tmp_path: Path):
    first = build_mtlendovis(endovis_source, tmp_path / "one")
    second = build_mtlendovis(endovis_source, tmp_path / "two", options=BuildOptions(workers=2))
    assert tree_digest(first) == tree_digest(second)


def test_overwrite_replaces_an_existing_dataset(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    build_mtlendovis(endovis_source, out)
    (out / "stale.txt").write_text("old")
    build_mtlendovis(endovis_source, out, options=BuildOptions(overwrite=True))
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


@pytest.mark.parametrize(
    "damage, where, message",
    [
        (lambda src: _corrupt(src / "miccai_challenge_2018_release_1/seq_2/left_frames/frame001.png"), "seq_2/left_frames/frame001.png", "corrupt or unreadable image"),
        (lambda src: _corrupt(src / "miccai_challenge_2018_release_1/seq_1/labels/frame002.png"), "seq_1/labels/frame002.png", "corrupt or unreadable image"),
        (lambda src: Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(src / "miccai_challenge_release_4/seq_15/labels/frame000.png"), "seq_15/labels/frame000.png", "label size 12x8 differs from its frame's 10x8"),
        (lambda src: (src / "miccai_challenge_2018_release_1/seq_2/labels.json").unlink(), "seq_2/labels.json", "labels.json missing"),
        (lambda src: (src / "miccai_challenge_2018_release_1/seq_2/labels.json").write_text("[{"), "seq_2/labels.json", "not valid JSON"),
        (lambda src: Image.fromarray(np.zeros((8, 10), np.uint8)).save(src / "miccai_challenge_release_4/seq_15/labels/frame001.png"), "seq_15/labels/frame001.png", "mode L; expected colour-coded"),
    ],
)
def test_bad_input_gives_one_line_error_and_no_output(endovis_source: Path, tmp_path: Path, damage, where, message):
    damage(endovis_source)
    with pytest.raises(InputError) as caught:
        build_mtlendovis(endovis_source, tmp_path / "ds")
    assert caught.value.where.endswith(where)
    assert message in caught.value.problem
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endovis"]


def test_missing_or_empty_source(tmp_path: Path):
    with pytest.raises(InputError, match="folder not found"):
        build_mtlendovis(tmp_path / "nowhere", tmp_path / "ds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no seq_\\* folders found"):
        build_mtlendovis(tmp_path / "empty", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_existing_target_is_refused_without_overwrite(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty"):
        build_mtlendovis(endovis_source, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_the_same_sequence_twice_is_refused(tmp_path: Path):
    write_sequence(tmp_path / "src" / "release_1", 4, {"frame000": simple_mask()})
    write_sequence(tmp_path / "src" / "release_2", 4, {"frame000": simple_mask()})
    with pytest.raises(InputError, match="sequence 4 appears twice"):
        build_mtlendovis(tmp_path / "src", tmp_path / "ds")


# --- EndoVis-18-VQA Sentence files ----------------------------------------------------------------


def write_sentences(vqa_root: Path, number: int, frame: str, lines: list[str]) -> None:
    folder = vqa_root / f"seq_{number}" / "vqa" / "Sentence"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{frame}_QA.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


SENTENCES = [
    "What organ is being operated?|organ being operated is kidney",
    "What tools are operating the organ?|the tools operating are bipolar forceps , Prograsp Forceps",
    "What is the state of suction?|action done by suction is Suction",
    "Where is clip_applier located?| clip_applier is located at left-top ",
]


def test_sentence_files_add_the_tools_and_sentences_tasks(endovis_source: Path, tmp_path: Path):
    for number in (1, 2, 15):
        for i in range(3):
            write_sentences(endovis_source, number, f"frame{i:03d}", SENTENCES if i == 0 else SENTENCES[:1])
    card = read_dataset(build_mtlendovis(endovis_source, tmp_path / "ds"))
    assert [(task.name, task.kind) for task in card.tasks] == [
        ("activity", "classification"), ("segmentation", "segmentation"), ("tools", "multilabel"), ("sentences", "text"),
    ]
    tools = card.task("tools").labels
    first = {s.sample_id: s for s in card.samples}["seq01_frame000"]
    # tools in the "tools" answer and in the questions; "Suction" the action names no tool, the question does
    assert [tools[i] for i in first.labels["tools"]] == ["bipolar_forceps", "prograsp_forceps", "suction", "clip_applier"]
    assert first.labels["sentences"].text == (
        "organ being operated is kidney the tools operating are bipolar forceps , Prograsp Forceps "
        "action done by suction is Suction clip_applier is located at left-top"
    )
    assert {s.sample_id: s for s in card.samples}["seq01_frame001"].labels["tools"] == ()
    assert card.meta["build_parameters"]["tools_rule"].startswith("tools named in a question")


def test_without_sentence_files_the_dataset_is_exactly_as_before(endovis_source: Path, tmp_path: Path):
    plain = build_mtlendovis(endovis_source, tmp_path / "plain")
    assert [task.name for task in read_dataset(plain).tasks] == ["activity", "segmentation"]
    assert "tools" not in (plain / "samples.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "sentences_rule" not in json.loads((plain / "dataset.json").read_text(encoding="utf-8"))["build_parameters"]


def test_a_frame_without_its_sentence_file_is_skipped_when_others_have_one(endovis_source: Path, tmp_path: Path):
    for number in (1, 2, 15):
        for i in range(3):
            if (number, i) != (2, 1):
                write_sentences(endovis_source, number, f"frame{i:03d}", SENTENCES[:1])
    card = read_dataset(build_mtlendovis(endovis_source, tmp_path / "ds"))
    assert card.meta["skipped"]["frame without Sentence file"] == {"count": 1, "examples": ["seq_2/frame001"]}
    assert len(card.samples) == 8


def test_a_bad_sentence_file_is_refused_naming_it(endovis_source: Path, tmp_path: Path):
    for number in (1, 2, 15):
        for i in range(3):
            write_sentences(endovis_source, number, f"frame{i:03d}", SENTENCES[:1])
    write_sentences(endovis_source, 15, "frame002", ["What organ is being operated? kidney"])
    with pytest.raises(InputError, match="line 1: expected question\\|answer") as caught:
        build_mtlendovis(endovis_source, tmp_path / "ds")
    assert caught.value.where.endswith("seq_15/vqa/Sentence/frame002_QA.txt")
    assert not (tmp_path / "ds").exists()


# --- class schemes ----------------------------------------------------------------------------------

# The release scheme written out by hand: (id, name, colour), and the id each standard class gets.
RELEASE_CLASSES = [
    (0, "background-tissue", (0, 0, 0)),
    (1, "instrument", (0, 255, 0)),
    (2, "kidney-parenchyma", (255, 55, 0)),
    (3, "covered-kidney", (24, 55, 125)),
    (4, "thread", (187, 155, 25)),
    (5, "clamps", (0, 255, 125)),
    (6, "suturing-needle", (255, 255, 125)),
    (7, "suction-instrument", (123, 15, 175)),
    (8, "small-intestine", (124, 155, 5)),
    (9, "ultrasound-probe", (12, 255, 141)),
]
RELEASE_ID_OF_STANDARD = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5, 8: 6, 9: 7, 10: 8, 11: 9}


def every_class_mask() -> np.ndarray:
    """All 12 standard classes, one per row of a 12x10 frame, and one pixel of a colour no class has."""
    mask = np.repeat(np.arange(12, dtype=np.uint8), 10).reshape(12, 10)
    mask[0, 0] = 100
    return mask


def write_every_class_source(root: Path) -> Path:
    for number in (1, 2, 15):
        write_sequence(root, number, {"frame000": every_class_mask()}, extra_colours={100: (1, 2, 3)})
        write_qa(root, number, "frame000", {"suction": "Suction"})
    return root


def test_release_scheme_merges_the_instrument_parts_into_one_class(tmp_path: Path):
    source = write_every_class_source(tmp_path / "src")
    out = build_mtlendovis(source, tmp_path / "ds", classes="release")
    card = read_dataset(out)
    assert [(c.id, c.name, c.color) for c in card.classes] == RELEASE_CLASSES
    expected = np.vectorize(lambda k: RELEASE_ID_OF_STANDARD.get(k, 255), otypes=[np.uint8])(every_class_mask())
    for sample in card.samples:
        np.testing.assert_array_equal(read_mask(out, sample.sample_id), expected)
    assert card.meta["build_parameters"]["class_scheme"] == "release"
    assert "; classes: release (10 classes" in card.meta["source"]["description"]
    standard = read_dataset(build_mtlendovis(source, tmp_path / "standard"))
    counts = standard.meta["splits"]["test"]["tasks"]["segmentation"]["pixel_counts"]
    merged = card.meta["splits"]["test"]["tasks"]["segmentation"]["pixel_counts"]
    assert merged["instrument"] == counts["instrument-shaft"] + counts["instrument-clasper"] + counts["instrument-wrist"]
    assert standard.meta["build_parameters"]["class_scheme"] == "endovis18"
    assert [(c.id, c.name, c.color) for c in standard.classes][:2] == [(0, "background-tissue", (0, 0, 0)), (1, "instrument-shaft", (0, 255, 0))]


def test_release_scheme_rebuilds_byte_identically(endovis_source: Path, tmp_path: Path):
    first = build_mtlendovis(endovis_source, tmp_path / "one", classes="release")
    second = build_mtlendovis(endovis_source, tmp_path / "two", classes="release", options=BuildOptions(workers=2))
    assert tree_digest(first) == tree_digest(second)


def test_an_unknown_class_scheme_is_refused_before_anything_is_read(tmp_path: Path):
    with pytest.raises(InputError) as caught:
        build_mtlendovis(tmp_path / "nowhere", tmp_path / "ds", classes="endovis17")
    assert str(caught.value) == "--classes: unknown class scheme 'endovis17' (known: endovis18, release)"
    assert list(tmp_path.iterdir()) == []


def test_mtlendovis_gen_keeps_the_classes_of_a_release_scheme_base(endovis_source: Path, tmp_path: Path):
    from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen

    base = read_dataset(build_mtlendovis(endovis_source, tmp_path / "base", classes="release"))
    gen = read_dataset(build_mtlendovis_gen(base.root, tmp_path / "gen", corruptions=("gaussian_noise",), severities=(1,)))
    assert gen.classes == base.classes and len(gen.classes) == 10
    mask_of = {sample.sample_id: sample.mask_sha256 for sample in base.samples}
    assert [sample.mask_sha256 for sample in gen.samples] == [mask_of[s.extra["clean_sample_id"]] for s in gen.samples]


def release_loader(root: Path, mode: str) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """What the EndoARSS release's `DS` loader (create_dataset.py) gives for `mode`, rewritten here
    from its published definition: every folder under ROOT/mode is an activity folder; its mask/
    files ending in png are the samples, each with the image of the same name in image/; the mask
    is read with convert('L'), non-zero values lose 1 and the loader asserts max <= 9 (a frame
    failing it comes back as None, which breaks the DataLoader); the activity label is the folder
    number minus 1. Its resize to img_size (NEAREST for masks) is left out: it moves pixels but
    makes no new values, and without it the masks compare pixel for pixel."""
    items = {}
    for activity in os.listdir(root / mode):
        for name in os.listdir(root / mode / activity / "mask"):
            if name.split(".")[-1] != "png":
                continue
            image = np.array(Image.open(root / mode / activity / "image" / name).convert("RGB"))
            mask = np.array(Image.open(root / mode / activity / "mask" / name).convert("L"))
            mask[mask > 0] -= 1
            assert np.max(mask) <= 9, f"the release's loader returns None for {mode}/{activity}/mask/{name}"
            items[name.removesuffix(".png")] = (image, mask, int(activity) - 1)
    return items


def test_the_endoarss_export_of_the_release_scheme_loads_in_the_release_loader(tmp_path: Path):
    source = write_every_class_source(tmp_path / "src")
    out = build_mtlendovis(source, tmp_path / "ds", classes="release", options=BuildOptions(exports=("endoarss",)))
    card = read_dataset(out)
    for split in card.split_names:
        loaded = release_loader(out / "exports" / "endoarss", split)
        assert sorted(loaded) == [sample.sample_id for sample in card.split(split)]
        for sample in card.split(split):
            image, mask, activity = loaded[sample.sample_id]
            np.testing.assert_array_equal(image, np.asarray(Image.open(out / sample.image).convert("RGB")))
            stored = read_mask(out, sample.sample_id)
            np.testing.assert_array_equal(mask, np.where(stored == 255, 0, stored))  # ignore reads as background
            assert mask.max() == 9  # every frame has ultrasound-probe, the last class
            assert activity == sample.activity_id == card.activities.index("Suction")


def test_the_endoarss_export_of_the_twelve_classes_is_refused_before_anything_is_written(tmp_path: Path):
    source = write_every_class_source(tmp_path / "src")
    with pytest.raises(InputError) as caught:
        build_mtlendovis(source, tmp_path / "ds", options=BuildOptions(exports=("endoarss",)))
    assert str(caught.value) == (
        "--export: export 'endoarss' cannot be written for mtlendovis: the EndoARSS release's loader accepts at most "
        "10 segmentation classes (it asserts mask values <= 9 after subtracting 1); this dataset has 12 "
        "(MTLEndovis: build it with --classes release)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
