"""Reading and validating submissions: one test per rule of docs/format-submission.md."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import GridMask, SeededImage, class_scores, in_memory_spec, predicted_classes

from mtlbench import pngio
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.dataset.writer import SampleJob, build_dataset
from mtlbench.errors import InputError
from mtlbench.evaluation import submission as submission_module
from mtlbench.evaluation.submission import Submission, expected_format, open_submission
from mtlbench.taxonomies import SegClass

CLASSES = (SegClass(0, "background", (0, 0, 0)), SegClass(1, "tool", (0, 255, 0)), SegClass(2, "tissue", (255, 0, 0)))
ACTIVITIES = ("idle", "Tissue Manipulation", "suturing")
HEIGHT, WIDTH = 20, 35  # not a multiple of the dummy's mask tiles

# (sample_id, split, activity_id, class of the mask's right half); two sequences per split.
FRAMES = (
    ("s1_f1", "train", 0, 1),
    ("s1_f2", "train", 0, 2),
    ("s2_f1", "train", 2, 0),
    ("s3_f1", "val", 1, 1),
    ("s4_f1", "val", 2, 2),
    ("s5_f1", "test", 0, 1),
    ("s5_f2", "test", 1, 2),
    ("s6_f1", "test", 2, 0),
)
TEST_IDS = ("s5_f1", "s5_f2", "s6_f1")


def half_mask(right_class: int) -> GridMask:
    """Background on the left half, `right_class` on the right half."""
    row = (0,) * (WIDTH // 2) + (right_class,) * (WIDTH - WIDTH // 2)
    return GridMask((row,) * HEIGHT)


def build_tiny_dataset(out: Path) -> DatasetCard:
    jobs = [
        SampleJob(sample_id, split, sample_id[:2], sample_id[3:], SeededImage(i, HEIGHT, WIDTH), {"activity": activity}, half_mask(right))
        for i, (sample_id, split, activity, right) in enumerate(FRAMES)
    ]
    return read_dataset(build_dataset(in_memory_spec(CLASSES, ACTIVITIES), jobs, [], out))


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> DatasetCard:
    return build_tiny_dataset(tmp_path_factory.mktemp("dataset") / "tiny")


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


SCORE_HEADER = ["sample_id", "activity", "score_idle", "score_Tissue Manipulation", "score_suturing"]
VALID_ROWS = [
    SCORE_HEADER,
    ["s5_f1", "idle", "0.7", "0.2", "0.1"],
    ["s5_f2", "1", "0", "1", "0"],
    ["s6_f1", "suturing", "0.25", "0.25", "0.5"],
]


def write_submission(
    folder: Path, card: DatasetCard, rows=VALID_ROWS, masks=TEST_IDS, meta: dict | None = None
) -> Path:
    """A submission for the test split; `rows=None` / `masks=None` leave that task out."""
    folder.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        (folder / "activities.csv").write_text(csv_text(rows), encoding="utf-8")
    if masks is not None:
        (folder / "masks").mkdir()
        for sample_id in masks:
            pngio.write_png(folder / "masks" / f"{sample_id}.png", np.ones((HEIGHT, WIDTH), dtype=np.uint8))
    meta = {"method": "unit", "dataset_fingerprint": card.fingerprint, "split": "test"} if meta is None else meta
    (folder / "submission.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def refused(path: Path, card: DatasetCard, split: str = "test", **options) -> InputError:
    """The one-line InputError that opening the submission raises."""
    with pytest.raises(InputError) as caught, open_submission(path, card, split, **options):
        pass
    assert "\n" not in str(caught.value)
    return caught.value


def contents(submission: Submission) -> tuple:
    return (
        submission.tasks,
        predicted_classes(submission),
        {key: value.tolist() for key, value in class_scores(submission).items()},
        {key: value.read_bytes() for key, value in submission.predictions.get("segmentation").items()},
        submission.missing,
        submission.meta,
    )


# --- valid submissions ----------------------------------------------------------------------


def test_a_valid_folder_parses(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    with open_submission(folder, card, "test") as submission:
        assert submission.root == folder
        assert submission.tasks == ("activity", "segmentation")
        assert predicted_classes(submission) == {"s5_f1": 0, "s5_f2": 1, "s6_f1": 2}
        np.testing.assert_array_equal(class_scores(submission)["s6_f1"], [0.25, 0.25, 0.5])
        assert class_scores(submission)["s6_f1"].dtype == np.float64
        assert submission.predictions.get("segmentation") == {sample_id: folder / "masks" / f"{sample_id}.png" for sample_id in TEST_IDS}
        assert submission.missing == {}
        assert submission.meta["method"] == "unit"


@pytest.mark.parametrize("prefix", ["", "predictions/"])
def test_a_zip_parses_like_its_folder(card: DatasetCard, tmp_path: Path, prefix: str):
    folder = write_submission(tmp_path / "pred", card)
    archive = zip_folder(folder, tmp_path / "pred.zip", prefix)
    with open_submission(folder, card, "test") as from_folder, open_submission(archive, card, "test") as from_zip:
        assert contents(from_zip) == contents(from_folder)
        assert from_zip.root.name.startswith("mtlbench-submission-")  # a temporary folder, whatever the zip's prefix


def test_one_task_alone_is_a_submission(card: DatasetCard, tmp_path: Path):
    with open_submission(write_submission(tmp_path / "a", card, masks=None), card, "test") as submission:
        assert submission.tasks == ("activity",) and submission.predictions.get("segmentation") is None
    with open_submission(write_submission(tmp_path / "s", card, rows=None), card, "test") as submission:
        assert submission.tasks == ("segmentation",) and predicted_classes(submission) is None


def test_activities_by_id_or_by_name_in_another_case_and_without_scores(card: DatasetCard, tmp_path: Path):
    rows = [["sample_id", "activity"], ["s5_f1", "IDLE"], ["s5_f2", "tissue_manipulation"], ["s6_f1", "2"]]
    with open_submission(write_submission(tmp_path / "pred", card, rows=rows), card, "test") as submission:
        assert predicted_classes(submission) == {"s5_f1": 0, "s5_f2": 1, "s6_f1": 2}
        assert class_scores(submission) is None


def test_columns_in_any_order_a_bom_and_blank_lines_are_accepted(card: DatasetCard, tmp_path: Path):
    text = (
        "\ufeff"
        + csv_text([["activity", "sample_id"], ["idle", "s5_f1"], ["idle", "s5_f2"], ["idle", "s6_f1"]])
        + "\n\n"
    )
    folder = write_submission(tmp_path / "pred", card, rows=None, masks=TEST_IDS)
    (folder / "activities.csv").write_text(text, encoding="utf-8")
    with open_submission(folder, card, "test") as submission:
        assert predicted_classes(submission) == {"s5_f1": 0, "s5_f2": 0, "s6_f1": 0}


def test_allow_missing_records_the_missing_ids(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card, rows=VALID_ROWS[:2], masks=TEST_IDS[1:])
    with open_submission(folder, card, "test", allow_missing=True) as submission:
        assert submission.missing == {"activity": ("s5_f2", "s6_f1"), "segmentation": ("s5_f1",)}
        assert set(submission.predictions.get("segmentation")) == {"s5_f2", "s6_f1"}


def test_the_zip_scratch_folder_is_removed_on_exit_and_on_error(card: DatasetCard, tmp_path: Path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    archive = zip_folder(write_submission(tmp_path / "pred", card), tmp_path / "pred.zip")
    with open_submission(archive, card, "test") as submission:
        assert submission.root.is_relative_to(scratch) and submission.root.is_dir()
    assert not any(scratch.iterdir())
    with pytest.raises(RuntimeError), open_submission(archive, card, "test"):
        raise RuntimeError("scoring failed")
    assert not any(scratch.iterdir())
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(bad, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, b"no header\n" if info.filename == "activities.csv" else source.read(info))
    refused(bad, card)
    assert not any(scratch.iterdir())


# --- the path and the zip -------------------------------------------------------------------


def test_a_missing_path_is_refused(card: DatasetCard, tmp_path: Path):
    error = refused(tmp_path / "nowhere", card)
    assert error.where == str(tmp_path / "nowhere") and "not found" in error.problem


def test_a_file_that_is_not_a_zip_is_refused(card: DatasetCard, tmp_path: Path):
    (tmp_path / "pred.tar").write_bytes(b"x")
    assert "folder or a .zip" in refused(tmp_path / "pred.tar", card).problem
    (tmp_path / "pred.zip").write_bytes(b"not a zip")
    assert "not a readable zip" in refused(tmp_path / "pred.zip", card).problem


def _zip_with_entry(path: Path, info: zipfile.ZipInfo) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("activities.csv", csv_text(VALID_ROWS))
        zipped.writestr(info, b"x")
    return path


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("masks/s5_f1.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "info, fragment",
    [
        (zipfile.ZipInfo("/etc/evil"), "absolute path"),
        (zipfile.ZipInfo("masks/../../evil"), "'..'"),
        (zipfile.ZipInfo("..\\evil"), "'..'"),
        (zipfile.ZipInfo("C:/evil"), "drive letter"),
        (_symlink_entry(), "symbolic link"),
    ],
)
def test_unsafe_zip_entries_are_refused_before_extracting(card, tmp_path, monkeypatch, info, fragment):
    def must_not_extract(*args):
        raise AssertionError("extracted before checking every entry")

    monkeypatch.setattr(submission_module, "_extract_entry", must_not_extract)
    archive = _zip_with_entry(tmp_path / "pred.zip", info)
    error = refused(archive, card)
    assert error.where == str(archive) and fragment in error.problem and repr(info.filename) in error.problem


def test_zip_bound_on_entries(card: DatasetCard, tmp_path: Path, monkeypatch):
    archive = zip_folder(write_submission(tmp_path / "pred", card), tmp_path / "pred.zip")
    monkeypatch.setattr(submission_module, "MAX_ZIP_ENTRIES", 3)
    assert "entries exceed the limit of 3" in refused(archive, card).problem


def test_zip_entries_are_bounded_by_what_the_split_can_need(card: DatasetCard, tmp_path: Path):
    """A 35x20 mask can need at most 2 * 700 + 2**20 bytes; an entry declaring more is refused unextracted."""
    folder = write_submission(tmp_path / "pred", card)
    archive = zip_folder(folder, tmp_path / "pred.zip")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("masks/extra-layer", b"")  # not read: named in the error, with the other bad entries
    assert "masks: 1 unexpected entry: extra-layer (not .png)" in str(refused(archive, card))
    padded = tmp_path / "padded.zip"
    with zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(folder / "activities.csv", "activities.csv")
        for sample_id in TEST_IDS[:-1]:
            zipped.write(folder / "masks" / f"{sample_id}.png", f"masks/{sample_id}.png")
        zipped.writestr(f"masks/{TEST_IDS[-1]}.png", bytes(2 * WIDTH * HEIGHT + 2**20 + 1))
    error = refused(padded, card)
    assert f"entry 'masks/{TEST_IDS[-1]}.png' declares {2 * 700 + 2**20 + 1} bytes, more than a 35x20 mask can need" in error.problem


def test_a_folder_inside_masks_of_a_zip_is_refused_unextracted(card: DatasetCard, tmp_path: Path):
    archive = zip_folder(write_submission(tmp_path / "pred", card), tmp_path / "pred.zip", "pred/")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("pred/masks/extra/s5_f1.png", b"not read")
    error = refused(archive, card)
    assert error.where == str(archive / "pred" / "masks") and error.problem == "1 unexpected entry: extra (a sub-folder)"


def test_a_zip_with_several_top_level_folders_is_refused(card: DatasetCard, tmp_path: Path):
    with zipfile.ZipFile(tmp_path / "pred.zip", "w") as zipped:
        zipped.writestr("a/activities.csv", csv_text(VALID_ROWS))
        zipped.writestr("b/activities.csv", csv_text(VALID_ROWS))
    assert "one top-level folder (found: a, b)" in refused(tmp_path / "pred.zip", card).problem


def test_macos_metadata_in_a_zip_is_skipped(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    archive = zip_folder(folder, tmp_path / "pred.zip", "pred/")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("__MACOSX/pred/._activities.csv", b"\x00\x05")
    with open_submission(archive, card, "test") as submission, open_submission(folder, card, "test") as from_folder:
        assert contents(submission) == contents(from_folder)
        assert not (submission.root / "__MACOSX").exists()


# --- the folder -----------------------------------------------------------------------------


def test_a_folder_without_predictions_is_refused(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card, rows=None, masks=None)
    error = refused(folder, card)
    assert error.where == str(folder) and "no predictions" in error.problem


def test_the_split_must_exist_and_have_samples(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    assert "no split 'dev'" in refused(folder, card, "dev").problem
    without_val = replace(card, samples=tuple(sample for sample in card.samples if sample.split != "val"))
    error = refused(folder, without_val, "val")
    assert error.where.endswith("dataset.json") and "split 'val' has no samples" in error.problem


# --- activities.csv -------------------------------------------------------------------------


def _activities_error(card: DatasetCard, folder: Path, text: str | bytes) -> InputError:
    write_submission(folder, card, rows=None, masks=None)
    target = folder / "activities.csv"
    target.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    error = refused(folder, card)
    assert error.where == str(target)
    return error


def test_activities_not_utf8(card, tmp_path):
    assert "not UTF-8" in _activities_error(card, tmp_path / "p", b"sample_id,activity\ns5_f1,\xe9t\xe9\n").problem


def test_activities_header_lacks_a_column(card, tmp_path):
    problem = _activities_error(card, tmp_path / "p", "id,activity\ns5_f1,idle\n").problem
    assert "lacks the column(s) sample_id" in problem


def test_activities_row_with_the_wrong_field_count(card, tmp_path):
    problem = _activities_error(card, tmp_path / "p", "sample_id,activity\ns5_f1,idle\ns5_f2,idle,extra\n").problem
    assert "line 3: expected 2 fields, found 3" in problem


@pytest.mark.parametrize(
    "sample_id, fragment", [("s9_f9", "not a sample of dataset 'tiny'"), ("s1_f1", "split 'train', not 'test'")]
)
def test_activities_unknown_sample_id(card, tmp_path, sample_id, fragment):
    problem = _activities_error(card, tmp_path / "p", f"sample_id,activity\ns5_f1,idle\n{sample_id},idle\n").problem
    assert f"line 3: sample_id '{sample_id}'" in problem and fragment in problem


def test_activities_duplicate_sample_id_names_both_lines(card, tmp_path):
    problem = _activities_error(
        card, tmp_path / "p", "sample_id,activity\ns5_f1,idle\ns5_f2,idle\ns5_f1,idle\n"
    ).problem
    assert "line 4: duplicate sample_id 's5_f1' (first on line 2)" in problem


@pytest.mark.parametrize("value", ["cutting", "3", "-1", "1.0"])
def test_activities_outside_the_vocabulary(card, tmp_path, value):
    problem = _activities_error(card, tmp_path / "p", f"sample_id,activity\ns5_f1,{value}\n").problem
    assert f"line 2: activity '{value}' is not in the vocabulary" in problem
    assert "0 idle, 1 Tissue Manipulation, 2 suturing" in problem


def test_activities_score_column_not_in_the_vocabulary(card, tmp_path):
    problem = _activities_error(card, tmp_path / "p", "sample_id,activity,score_cutting\ns5_f1,idle,1\n").problem
    assert "unknown column(s) 'score_cutting'" in problem and "score_idle" in problem


def test_activities_with_a_pandas_index_column_get_a_hint(card, tmp_path):
    problem = _activities_error(card, tmp_path / "p", ",sample_id,activity\n0,s5_f1,idle\n").problem
    assert "unknown column(s) ''" in problem and "index=False" in problem


def test_activities_only_some_score_columns(card, tmp_path):
    problem = _activities_error(
        card, tmp_path / "p", "sample_id,activity,score_idle,score_suturing\ns5_f1,idle,1,0\n"
    ).problem
    assert "every activity or none" in problem and "score_Tissue Manipulation" in problem


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("abc", "is not a number"),
        ("nan", "not a probability"),
        ("inf", "not a probability"),
        ("1.5", "not a probability in [0, 1]"),
        ("-0.1", "[0, 1]"),
    ],
)
def test_activities_score_not_a_probability(card, tmp_path, value, fragment):
    rows = [SCORE_HEADER, ["s5_f1", "idle", value, "0", "0"]]
    problem = _activities_error(card, tmp_path / "p", csv_text(rows)).problem
    assert f"line 2: score_idle '{value}'" in problem and fragment in problem


def test_activities_scores_that_do_not_sum_to_one(card, tmp_path):
    rows = [SCORE_HEADER, ["s5_f1", "idle", "0.5", "0.25", "0.25"], ["s5_f2", "idle", "0.5", "0.2", "0.2"]]
    problem = _activities_error(card, tmp_path / "p", csv_text(rows)).problem
    assert "line 3: scores sum to 0.9" in problem


def test_activities_within_the_sum_tolerance_pass(card, tmp_path):
    rows = [SCORE_HEADER] + [[sample_id, "idle", "0.3334", "0.3333", "0.3337"] for sample_id in TEST_IDS]
    with open_submission(write_submission(tmp_path / "p", card, rows=rows), card, "test") as submission:
        assert class_scores(submission)["s5_f1"].sum() == pytest.approx(1.0004)


# --- masks/ ---------------------------------------------------------------------------------


def test_unexpected_mask_entries_are_listed_with_their_count(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    (folder / "masks" / "s9_f9.png").write_bytes(b"x")
    (folder / "masks" / "s1_f1.png").write_bytes(b"x")
    (folder / "masks" / "s5_f1.jpg").write_bytes(b"x")
    (folder / "masks" / "extra").mkdir()
    error = refused(folder, card)
    assert error.where == str(folder / "masks")
    assert error.problem.startswith("4 unexpected entries:")
    for fragment in (
        "extra (a sub-folder)",
        "s1_f1.png (a sample of split 'train'",
        "s5_f1.jpg (not .png)",
        "s9_f9.png (not a sample",
    ):
        assert fragment in error.problem


def test_more_than_ten_unexpected_masks_are_counted(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    for index in range(12):
        (folder / "masks" / f"other{index:02d}.png").write_bytes(b"x")
    problem = refused(folder, card).problem
    assert problem.startswith("12 unexpected entries:") and "other09.png" in problem and "other10.png" not in problem


def test_symbolic_links_are_refused(card: DatasetCard, tmp_path: Path):
    folder = write_submission(tmp_path / "pred", card)
    os.replace(folder / "masks" / "s5_f1.png", tmp_path / "outside.png")
    (folder / "masks" / "s5_f1.png").symlink_to(tmp_path / "outside.png")
    error = refused(folder, card)
    assert error.where == str(folder / "masks" / "s5_f1.png") and "symbolic link" in error.problem
    linked = write_submission(tmp_path / "linked", card, rows=None)
    (linked / "activities.csv").symlink_to(folder / "activities.csv")
    assert refused(linked, card).where == str(linked / "activities.csv")


# --- missing predictions --------------------------------------------------------------------


def test_missing_activity_rows_are_refused(card: DatasetCard, tmp_path: Path):
    error = refused(write_submission(tmp_path / "pred", card, rows=VALID_ROWS[:2]), card)
    assert error.where.endswith("activities.csv") and "2 of 3 predictions missing: s5_f2, s6_f1" in error.problem


def test_missing_masks_are_refused(card: DatasetCard, tmp_path: Path):
    error = refused(write_submission(tmp_path / "pred", card, masks=TEST_IDS[:2]), card)
    assert error.where.endswith("masks") and "1 of 3 predictions missing: s6_f1" in error.problem


# --- submission.json ------------------------------------------------------------------------


def _meta_error(card: DatasetCard, folder: Path, text: str, **options) -> InputError:
    write_submission(folder, card)
    (folder / "submission.json").write_text(text, encoding="utf-8")
    error = refused(folder, card, **options)
    assert error.where == str(folder / "submission.json")
    return error


def test_meta_not_json(card, tmp_path):
    assert "not valid JSON" in _meta_error(card, tmp_path / "p", "{method: x}").problem


def test_meta_not_an_object(card, tmp_path):
    assert "JSON object" in _meta_error(card, tmp_path / "p", "[1, 2]").problem


def test_meta_with_a_wrongly_typed_field(card, tmp_path):
    assert "'parameter_count' must be int" in _meta_error(card, tmp_path / "p", '{"parameter_count": "12M"}').problem


def test_meta_for_another_dataset_fingerprint(card, tmp_path):
    problem = _meta_error(card, tmp_path / "p", json.dumps({"dataset_fingerprint": "0" * 64})).problem
    assert "differs from" in problem and card.fingerprint in problem and "--ignore-fingerprint" in problem
    with open_submission(tmp_path / "p", card, "test", ignore_fingerprint=True) as submission:
        assert submission.meta == {"dataset_fingerprint": "0" * 64}


def test_meta_for_another_split(card, tmp_path):
    text = json.dumps({"dataset_fingerprint": card.fingerprint, "split": "val"})
    assert (
        "made for split 'val', but split 'test'"
        in _meta_error(card, tmp_path / "p", text, ignore_fingerprint=True).problem
    )


def test_meta_keeps_unknown_keys_and_may_be_absent(card, tmp_path):
    folder = write_submission(tmp_path / "p", card, meta={"method": "m", "seed": None, "gpu": "H100"})
    with open_submission(folder, card, "test") as submission:
        assert submission.meta == {"method": "m", "seed": None, "gpu": "H100"}
    (folder / "submission.json").unlink()
    with open_submission(folder, card, "test") as submission:
        assert submission.meta == {}


# --- the format text ------------------------------------------------------------------------


def test_expected_format_names_the_dataset_specifics(card: DatasetCard):
    text = expected_format(card, "test")
    assert "score_idle,score_Tissue Manipulation,score_suturing" in text
    assert "Split: test, 3 samples" in text and "s5_f1, s5_f2, s6_f1" in text
    assert card.fingerprint in text and "0 idle, 1 Tissue Manipulation, 2 suturing" in text
    assert "0 background, 1 tool, 2 tissue" in text and f"{WIDTH}x{HEIGHT}" in text


def test_expected_format_without_a_dataset_is_generic(card: DatasetCard):
    generic = expected_format(None, None)
    assert "activities.csv" in generic and "masks/<sample_id>.png" in generic and "tiny" not in generic
    assert "samples per split: train 3, val 2, test 3" in expected_format(card, None)
