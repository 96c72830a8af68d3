"""The PitVQA builder: QA files drive the reading, answers map onto the tasks, the split is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import frame_image
from mtlbench.builders.pitvqa import INSTRUMENTS, PHASES, STEPS, build_pitvqa
from mtlbench.dataset.manifest import read_dataset
from mtlbench.demo import pitvqa as demo
from mtlbench.errors import InputError
from mtlbench.pngio import write_png
from mtlbench.progress import silent
from mtlbench.sources.pitvqa import question_kind
from mtlbench.tasks import TextLabel

BASE = [
    "What is the current phase of the surgery?|sellar",
    "What is the current step of the surgery?|durotomy",
    "What is the next phase of the surgery?|closure",
    "What is the next step of the surgery?|tumour_excision",
    "What surgical operation is being performed?|A cruciate durotomy is performed",
]


def write_frame(root: Path, video: int, second: int, lines: list[str] | None, image: bool = True) -> None:
    name = f"{second:05d}"
    if image:
        write_png(root / "images" / f"video_{video:02d}" / f"{name}.png", frame_image(8, 8, video * 100 + second))
    if lines is not None:
        path = root / "QA" / f"video_{video:02d}" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def small_source(root: Path) -> Path:
    """Videos 01, 03 (training) and 02 (an official validation video, so test), two frames each."""
    tool = [
        "How many instruments are visible?|one",
        "Which instrument is at the centre?|dural_scissors",
        "Where is the tip of the dural_scissors?|centre",
        "What activity is the dural_scissors performing?|cutting",
    ]
    for video in (1, 2, 3):
        write_frame(root, video, 0, BASE + ["How many instruments are visible?|zero"])
        write_frame(root, video, 1, BASE + tool)
    return root


@pytest.mark.parametrize(
    "question, kind, tool",
    [
        ("What is the current phase of the surgery?", "phase", None),
        ("What is the next phase of the surgery?", "next_phase", None),
        ("What is the current step of the surgery?", "step", None),
        ("What is the next step of the surgery?", "next_step", None),
        ("What surgical operation is being performed?", "operation", None),
        ("How many instruments are visible?", "count", None),
        ("Which instrument is at the top-left?", "at_position", None),
        ("Where is the tip of the freer_elevator?", "tip", "freer_elevator"),
        ("What activity is the suction performing?", "tool_activity", "suction"),
        ("What is the cottle doing?", "tool_activity", "cottle"),
        ("What colour is the sky?", None, None),
    ],
)
def test_questions_are_recognised_by_their_words(question: str, kind: str | None, tool: str | None):
    assert question_kind(question) == (None if kind is None else (kind, tool))


def test_labels_come_from_the_qa_lines(tmp_path: Path):
    out = build_pitvqa(small_source(tmp_path / "src"), tmp_path / "ds")
    card = read_dataset(out)
    assert [task.name for task in card.tasks] == ["instruments", "phase", "step", "next_phase", "next_step", "operation_note"]
    sample = {s.sample_id: s for s in card.samples}["video_03_00001"]
    assert (sample.sequence, sample.frame) == ("03", "00001")
    assert sample.labels["instruments"] == (INSTRUMENTS.index("dural_scissors"),)
    assert sample.labels["phase"].name == "sellar" and sample.labels["phase"].id == PHASES.index("sellar")
    assert sample.labels["step"].name == "durotomy" and sample.labels["next_step"].id == STEPS.index("tumour_excision")
    assert sample.labels["next_phase"].name == "closure"
    assert sample.labels["operation_note"] == TextLabel("A cruciate durotomy is performed", ())
    assert {s.sample_id: s.labels["instruments"] for s in card.samples}["video_01_00000"] == ()


def test_the_official_validation_videos_are_the_test_split_and_val_is_carved_and_recorded(tmp_path: Path):
    card = read_dataset(build_pitvqa(small_source(tmp_path / "src"), tmp_path / "ds", seed=0))
    split = card.meta["build_parameters"]["split"]
    assert split["test"] == ["02"]
    assert sorted(split["train"] + split["val"]) == ["01", "03"] and len(split["val"]) == 1
    assert {s.sequence for s in card.split("val")} == set(split["val"])
    assert card.meta["build_parameters"]["seed"] == 0


def test_a_split_file_replaces_the_default(tmp_path: Path):
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": [1], "val": ["2"], "test": ["03"]}))  # numbers as written in the folders or not
    card = read_dataset(build_pitvqa(small_source(tmp_path / "src"), tmp_path / "ds", split_file=split_file))
    assert [{s.sequence for s in card.split(name)} for name in ("train", "val", "test")] == [{"01"}, {"02"}, {"03"}]
    split_file.write_text(json.dumps({"train": ["01", "09"], "val": ["02"], "test": ["03"]}))
    with pytest.raises(InputError, match="names videos that are not in .*QA: 09"):
        build_pitvqa(tmp_path / "src", tmp_path / "again", split_file=split_file)


def test_frames_that_cannot_be_used_are_skipped_and_counted(tmp_path: Path):
    root = small_source(tmp_path / "src")
    write_frame(root, 1, 5, None)  # an image without a QA file (a blurred frame)
    write_frame(root, 1, 6, BASE, image=False)
    write_frame(root, 3, 7, BASE[:1] + BASE[2:])  # no step question
    write_frame(root, 3, 8, [""])
    write_frame(root, 1, 9, BASE + ["Which instrument is at the centre?|no_visible_instrument"])
    card = read_dataset(build_pitvqa(root, tmp_path / "ds"))
    assert card.meta["skipped"] == {
        "QA file without its image": {"count": 1, "examples": ["video_01_00006"]},
        "QA file without the step question": {"count": 1, "examples": ["video_03_00007"]},
        "empty QA file": {"count": 1, "examples": ["video_03_00008"]},
        "image without a QA file": {"count": 1, "examples": ["video_01/00005.png"]},
    }
    assert {s.sample_id: s.labels["instruments"] for s in card.samples}["video_01_00009"] == ()


@pytest.mark.parametrize(
    "line, message",
    [
        ("What colour is the sky?|blue", "line 6: unknown question 'What colour is the sky\\?'"),
        ("Which instrument is at the centre?|laser", "line 6: instrument 'laser' is not one of the 18 PitVQA instruments"),
        ("What is the next step of the surgery?|durotomy|x", "line 6: expected question\\|answer, found 2 '\\|'"),
        ("What is the current step of the surgery?|durotomy", "line 6: a second step question"),
        ("Where is the tip of the laser?|centre", "line 6: instrument 'laser' is not one of"),
        ("What surgical operation is being performed?|Tab\there", "line 6: a second operation question"),
        ("How many instruments are visible?|", "line 6: empty answer"),
    ],
)
def test_a_bad_qa_line_is_refused_naming_the_file_and_line(tmp_path: Path, line: str, message: str):
    root = small_source(tmp_path / "src")
    write_frame(root, 1, 4, BASE + [line])
    with pytest.raises(InputError, match=message) as caught:
        build_pitvqa(root, tmp_path / "ds")
    assert "video_01/00004.txt" in str(caught.value)
    assert not (tmp_path / "ds").exists()


def test_answers_outside_the_vocabulary_and_layout_problems_are_refused(tmp_path: Path):
    root = small_source(tmp_path / "src")
    write_frame(root, 2, 4, ["What is the current phase of the surgery?|sella turcica", *BASE[1:]])
    with pytest.raises(InputError, match="00004.txt: line 1: phase 'sella turcica' is not one of the 4 PitVQA phases"):
        build_pitvqa(root, tmp_path / "ds")
    (root / "QA" / "video_02" / "00004.txt").write_bytes(b"What is the current phase?|\xff\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        build_pitvqa(root, tmp_path / "ds")
    (root / "QA" / "video_02" / "00004.txt").rename(root / "QA" / "video_02" / "notes.txt")
    with pytest.raises(InputError, match="QA files are named NNNNN.txt"):
        build_pitvqa(root, tmp_path / "ds")
    with pytest.raises(InputError, match="missing: a PitVQA folder holds images/video_XX/ and QA/video_XX/"):
        build_pitvqa(tmp_path / "src" / "images", tmp_path / "ds")


def test_an_operation_note_with_a_control_character_is_refused_at_its_line(tmp_path: Path):
    root = small_source(tmp_path / "src")
    write_frame(root, 3, 4, BASE[:4] + ["What surgical operation is being performed?|The sella\tis opened"])
    with pytest.raises(InputError, match="video_03/00004.txt: line 5: operation note holds the control character U\\+0009"):
        build_pitvqa(root, tmp_path / "ds")


def test_answers_match_ignoring_case_spaces_and_separators(tmp_path: Path):
    root = small_source(tmp_path / "src")
    write_frame(root, 1, 4, ["What is the current phase of the surgery?|Nasal Sphenoid", *BASE[1:], "Which instrument is at the centre?|Freer-Elevator"])
    sample = {s.sample_id: s for s in read_dataset(build_pitvqa(root, tmp_path / "ds")).samples}["video_01_00004"]
    assert sample.labels["phase"].name == "nasal_sphenoid"
    assert sample.labels["instruments"] == (INSTRUMENTS.index("freer_elevator"),)


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pitvqa")
    return build_pitvqa(demo.write_pitvqa(folder / "src", 0, silent), folder / "ds")


def test_the_demo_source_builds_with_its_quirks_reported(demo_dataset: Path):
    card = read_dataset(demo_dataset)
    assert card.meta["skipped"]["image without a QA file"]["count"] == len(demo.BLURRED_FRAMES)
    assert {s.sequence for s in card.split("test")} == {f"{v:02d}" for v in demo.VIDEOS if f"{v:02d}" in ("02", "06", "12", "13", "24")}
    video, second = demo.NO_VISIBLE_INSTRUMENT
    assert {s.sample_id: s for s in card.samples}[f"video_{video:02d}_{second:05d}"].labels["instruments"] == ()
    assert len(card.samples) == len(demo.VIDEOS) * demo.SECONDS_PER_VIDEO - len(demo.BLURRED_FRAMES)
