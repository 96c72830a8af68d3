"""Task types: declarations, samples.csv cells, label checks, texts stored losslessly and fingerprinted."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import SeededImage
from mtlbench.dataset.loader import SplitDataset
from mtlbench.dataset.manifest import read_dataset
from mtlbench.dataset.writer import DatasetSpec, SampleJob, build_dataset
from mtlbench.errors import InputError
from mtlbench.tasks import TextLabel, task_from_json
from mtlbench.tasks.classification import ClassificationTask
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.segmentation import SegmentationTask
from mtlbench.tasks.text import MAX_CHARACTERS, TextTask
from mtlbench.taxonomies import ENDOVIS18_CLASSES

LANDMARKS = MultilabelTask("landmarks", ("middle concha", "uncinate process", "ethmoid bulla"))
REPORT = TextTask("report", ("keyword", "previous"))
CAPTION = TextTask("caption")
PHASE = ClassificationTask("phase", ("sellar", "closure"))
TASKS = (LANDMARKS, PHASE, REPORT, CAPTION)
UMLAUT_REPORT = "Eröffnung der Stirnhöhle, Blutung mäßig; Straße frei."
DECOMPOSED = unicodedata.normalize("NFD", "Stirnhöhle")  # "o" + combining diaeresis


# --- declarations --------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [*TASKS, SegmentationTask("segmentation", ENDOVIS18_CLASSES), ClassificationTask("activity", ("a", "b"), "activities.csv")])
def test_a_declaration_reads_back_as_the_same_task(task):
    declared = json.loads(json.dumps(task.to_json()))
    assert task_from_json(declared, "dataset.json") == task
    assert declared["type"] == task.kind


@pytest.mark.parametrize(
    "declaration, message",
    [
        ({"name": "x", "type": "regression"}, "unknown task type 'regression'"),
        ({"name": "Landmarks", "type": "multilabel", "labels": ["a"]}, "task name 'Landmarks' must be lower-case"),
        ({"name": "x", "type": "multilabel", "labels": []}, "labels of task 'x' must be a non-empty list"),
        ({"name": "x", "type": "multilabel", "labels": ["a", "a"]}, "names occur twice: a"),
        ({"name": "x", "type": "multilabel", "labels": ["a|b"]}, "may not contain '\\|'"),
        ({"name": "x", "type": "multilabel", "labels": " a"}, "'labels' must be a list"),
        ({"name": "x", "type": "multilabel", "labels": ["a", "score_a"]}, "may not be 'sample_id' or start with 'score_': 'score_a'"),
        ({"name": "x", "type": "multilabel", "labels": ["sample_id"]}, "may not be 'sample_id'"),
        ({"name": "x", "type": "text", "context": ["Keyword"]}, "context fields must be distinct lower-case identifiers"),
        ({"name": "x", "type": "text", "context": ["k", "k"]}, "context fields must be distinct"),
        ({"name": "x", "type": "classification", "classes": ["a"], "submission": "x.txt"}, "must be a file name ending in .csv"),
        ("landmarks", "every entry of tasks must be an object"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_file(declaration, message):
    with pytest.raises(InputError, match=message) as caught:
        task_from_json(declaration, "ds/dataset.json")
    assert str(caught.value).startswith("ds/dataset.json")


# --- cells of samples.csv ------------------------------------------------------------------------


@pytest.mark.parametrize("cell, ids", [("", ()), ("middle concha", (0,)), ("middle concha|ethmoid bulla", (0, 2))])
def test_a_label_set_is_its_names_in_vocabulary_order(cell, ids):
    assert LANDMARKS.parse([cell], "row") == ids
    assert LANDMARKS.cells(ids) == [cell]


@pytest.mark.parametrize(
    "cell, message",
    [
        ("ethmoid bulla|middle concha", "distinct and in vocabulary order"),
        ("middle concha|middle concha", "distinct and in vocabulary order"),
        ("septum", "'septum' is not a label of task 'landmarks'"),
        ("middle concha|", "'' is not a label"),
    ],
)
def test_a_bad_label_set_cell_is_refused(cell, message):
    with pytest.raises(InputError, match=message):
        LANDMARKS.parse([cell], "samples.csv: line 2")


def test_builders_give_label_ids_in_any_order_and_get_them_sorted():
    assert LANDMARKS.check([2, 0], "job") == (0, 2)
    assert LANDMARKS.check(set(), "job") == ()
    for bad in ("middle concha", [3], [True], [0.0]):
        with pytest.raises(InputError, match="task 'landmarks'"):
            LANDMARKS.check(bad, "job")


def test_the_multilabel_loader_entry_is_a_float_indicator():
    np.testing.assert_array_equal(LANDMARKS.item((0, 2))["landmarks"], np.array([1, 0, 1], dtype=np.float32))
    assert LANDMARKS.item(())["landmarks"].dtype == np.float32


def test_a_text_keeps_its_context_fields_in_declared_order():
    label = REPORT.check(TextLabel("Die Bulla wird eröffnet.", (("keyword", "Bulla"), ("previous", ""))), "job")
    assert REPORT.cells(label) == ["Die Bulla wird eröffnet.", "Bulla", ""]
    assert REPORT.parse(REPORT.cells(label), "row") == label
    assert REPORT.item(label) == {"report": "Die Bulla wird eröffnet.", "report.keyword": "Bulla", "report.previous": ""}
    assert CAPTION.check("Ein Satz.", "job") == TextLabel("Ein Satz.", ())
    with pytest.raises(InputError, match="context fields \\['keyword', 'previous'\\]"):
        REPORT.check("no context", "job")


@pytest.mark.parametrize(
    "text, message",
    [
        ("two\nlines", "control character U\\+000A"),
        ("tab\there", "control character U\\+0009"),
        ("bell\x07", "control character U\\+0007"),
        ("line\u2028separator", "control character U\\+2028"),
        ("half \ud83d of an emoji", "lone surrogate U\\+D83D, which UTF-8 cannot encode"),
        ("   ", "caption is empty"),
        ("x" * (MAX_CHARACTERS + 1), f"has {MAX_CHARACTERS + 1} characters, more than the limit of {MAX_CHARACTERS}"),
    ],
)
def test_a_bad_text_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        CAPTION.check(text, "job")


def test_texts_at_the_limit_and_empty_context_fields_are_accepted():
    assert CAPTION.check("ä" * MAX_CHARACTERS, "job").text == "ä" * MAX_CHARACTERS
    assert REPORT.check(TextLabel("Satz.", (("keyword", "Satz"), ("previous", ""))), "job").field("previous") == ""


# --- a dataset with every non-image task type ----------------------------------------------------


def _spec() -> DatasetSpec:
    return DatasetSpec(
        name="vlm-tiny", version="1.0", builder_version="1", source={"description": "in-memory frames"},
        tasks=TASKS, splits=("train", "val", "test"), build_parameters={}, splits_from="in-memory split",
    )


def _jobs(report: str = UMLAUT_REPORT) -> list[SampleJob]:
    rows = [
        ("p1_0", "train", (0, 1), 0, report, ""),
        ("p1_1", "train", (), 1, "Keine Landmarke sichtbar.", report),
        ("p2_0", "val", (2,), 0, f"Die {DECOMPOSED} ist frei.", ""),
        ("p3_0", "test", (0, 2), 1, "Tamponade.", "Die Bulla wird eröffnet."),
    ]
    return [
        SampleJob(
            sample_id, split, sample_id.split("_")[0], sample_id.split("_")[1], SeededImage(index, 6, 8),
            {
                "landmarks": landmarks,
                "phase": phase,
                "report": TextLabel(text, (("keyword", text.split()[0]), ("previous", previous))),
                "caption": f"Bild {index}: {text}",
            },
        )
        for index, (sample_id, split, landmarks, phase, text, previous) in enumerate(rows)
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_dataset(_spec(), _jobs(), [], tmp_path_factory.mktemp("vlm") / "tiny")


def test_samples_csv_holds_each_task_s_columns_in_declared_order(dataset: Path):
    header = (dataset / "samples.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == [
        "sample_id", "split", "sequence", "frame", "image", "width", "height", "image_sha256",
        "landmarks", "phase", "phase_id", "report", "report.keyword", "report.previous", "caption",
    ]
    meta = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    assert meta["format_version"] == 2
    assert [task["name"] for task in meta["tasks"]] == ["landmarks", "phase", "report", "caption"]
    assert meta["splits"]["train"]["tasks"]["landmarks"] == {"counts": {"middle concha": 1, "uncinate process": 1, "ethmoid bulla": 0}, "empty": 1}
    assert meta["splits"]["train"]["tasks"]["phase"]["counts"] == {"sellar": 1, "closure": 1}


def test_texts_are_stored_byte_for_byte_and_read_back_unchanged(dataset: Path):
    raw = (dataset / "samples.csv").read_bytes()
    assert UMLAUT_REPORT.encode("utf-8") in raw
    assert DECOMPOSED.encode("utf-8") in raw  # not normalised to the composed form
    card = read_dataset(dataset)
    by_id = {sample.sample_id: sample for sample in card.samples}
    assert by_id["p1_0"].labels["report"] == TextLabel(UMLAUT_REPORT, (("keyword", "Eröffnung"), ("previous", "")))
    assert by_id["p1_1"].labels["report"].field("previous") == UMLAUT_REPORT
    assert by_id["p2_0"].labels["report"].text == f"Die {DECOMPOSED} ist frei."
    assert by_id["p1_1"].labels["landmarks"] == ()
    assert by_id["p3_0"].labels["phase"].name == "closure"


def test_the_loader_yields_every_task(dataset: Path):
    item = SplitDataset(read_dataset(dataset), "test")[0]
    assert item["sample_id"] == "p3_0" and item["phase"] == 1
    np.testing.assert_array_equal(item["landmarks"], [1, 0, 1])
    assert item["report"] == "Tamponade." and item["report.previous"] == "Die Bulla wird eröffnet."
    assert item["caption"] == "Bild 3: Tamponade." and "mask" not in item


def test_a_text_is_part_of_the_fingerprint(tmp_path: Path, dataset: Path):
    composed = build_dataset(_spec(), _jobs(unicodedata.normalize("NFC", UMLAUT_REPORT)), [], tmp_path / "same")
    assert read_dataset(composed).fingerprint == read_dataset(dataset).fingerprint
    decomposed = build_dataset(_spec(), _jobs(unicodedata.normalize("NFD", UMLAUT_REPORT)), [], tmp_path / "nfd")
    assert read_dataset(decomposed).fingerprint != read_dataset(dataset).fingerprint


def test_an_edited_text_breaks_the_fingerprint(tmp_path: Path):
    folder = build_dataset(_spec(), _jobs(), [], tmp_path / "edited")
    rows = list(csv.reader(io.StringIO((folder / "samples.csv").read_text(encoding="utf-8"))))
    rows[1][rows[0].index("report")] = UMLAUT_REPORT.replace("mäßig", "maessig")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (folder / "samples.csv").write_text(buffer.getvalue(), encoding="utf-8")
    with pytest.raises(InputError, match="does not match the fingerprint"):
        read_dataset(folder)


def test_a_control_character_written_into_samples_csv_is_refused_on_read(tmp_path: Path):
    folder = build_dataset(_spec(), _jobs(), [], tmp_path / "control")
    text = (folder / "samples.csv").read_text(encoding="utf-8").replace("Tamponade.", "Tampo\x0bnade.")
    (folder / "samples.csv").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="line 5: report holds the control character U\\+000B"):
        read_dataset(folder)


def test_a_job_with_labels_for_other_tasks_is_refused_before_anything_is_written(tmp_path: Path):
    jobs = _jobs()
    jobs[2] = replace(jobs[2], labels={key: value for key, value in jobs[2].labels.items() if key != "caption"})
    with pytest.raises(InputError, match="labels for tasks \\['landmarks', 'phase', 'report'\\] differ from the dataset's"):
        build_dataset(_spec(), jobs, [], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    bad_text = _jobs()
    bad_text[3] = replace(bad_text[3], labels={**bad_text[3].labels, "caption": "x\ny"})
    with pytest.raises(InputError, match="caption holds the control character U\\+000A"):
        build_dataset(_spec(), bad_text, [], tmp_path / "out")
    assert not (tmp_path / "out").exists()
