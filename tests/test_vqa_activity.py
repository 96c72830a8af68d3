"""The per-frame activity rule and QA parsing, on hand-written cases."""

from pathlib import Path

import pytest

from mtlbench.sources.endovis18_vqa import UnlabelledFrame, find_qa_files, frame_activity, read_actions


@pytest.mark.parametrize(
    "actions, expected",
    [
        (["Idle", "Idle"], "Idle"),
        (["Idle", "Cutting"], "Cutting"),
        (["Cutting", "Grasping"], "Grasping"),  # tie: Grasping comes first in the standard order
        (["Ultrasound_Sensing", "Retraction"], "Retraction"),
        (["Suction", "Suction", "Grasping", "Idle", "Idle", "Idle"], "Suction"),  # Idle never outvotes
        (["Staple", "Clipping", "Staple", "Clipping"], "Clipping"),
    ],
)
def test_frame_activity(actions, expected):
    assert frame_activity(actions) == expected


def test_action_lines_are_recognised_by_answer_only(tmp_path: Path):
    qa = tmp_path / "frame000_QA.txt"
    qa.write_text(
        "\ufeffWhat organ is being operated?|kidney\n"
        "what is prograsp_forceps doing?|Tissue_Manipulation\n"
        "Where is prograsp_forceps located?|left-top\n"
        "The state of bipolar_forceps is|tissue manipulation\n"
        "\n"
        "What is the state of monopolar_curved_scissors?| Cutting \n",
        encoding="utf-8",
    )
    assert read_actions(qa) == ["Tissue_Manipulation", "Tissue_Manipulation", "Cutting"]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty QA file"),
        (b"\n  \n", "empty QA file"),
        (b"What organ is being operated?|kidney\nWhere is prograsp_forceps located?|left-top\n", "no line answers with one of the 13 actions"),
        (b"q|Grasping\na line without separator\n", "line 2 is not a question|answer line"),
        (b"q|Grasping\xff\n", "not UTF-8 text (byte 10)"),
    ],
)
def test_a_qa_file_without_a_readable_action_is_never_labelled(tmp_path: Path, content: bytes, problem: str):
    qa = tmp_path / "frame000_QA.txt"
    qa.write_bytes(content)
    with pytest.raises(UnlabelledFrame) as caught:
        read_actions(qa)
    assert caught.value.where == str(qa) and problem in caught.value.problem


def test_qa_files_found_per_sequence_and_frame(tmp_path: Path):
    for number, frames in ((1, ("frame000", "frame001")), (5, ("frame003",))):
        folder = tmp_path / "release" / f"seq_{number}" / "vqa" / "Classification"
        folder.mkdir(parents=True)
        for frame in frames:
            (folder / f"{frame}_QA.txt").write_text("q|Idle\n")
    (tmp_path / "release" / "seq_7" / "vqa" / "Sentence").mkdir(parents=True)
    found = find_qa_files(tmp_path)
    assert sorted(found) == [1, 5]
    assert sorted(found[1]) == ["frame000", "frame001"]
    assert found[5]["frame003"].name == "frame003_QA.txt"
