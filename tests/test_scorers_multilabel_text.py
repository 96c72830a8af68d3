"""The multilabel and text scorers: their submission files (<task>.csv, <task>.jsonl) read strictly,
scored end to end through mtlbench.evaluate against hand-computed values and independent
references (scikit-learn, nltk, rouge-score, a separately loaded embedding model), written by the
submission writer and the dummy, and used through the CLI the way a user runs it."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SeededImage
from nltk.translate.bleu_score import corpus_bleu
from rouge_score.rouge_scorer import RougeScorer, _score_lcs
from rouge_score.tokenize import tokenize as rouge_tokenize
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss, precision_recall_fscore_support

import mtlbench
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.dataset.writer import DatasetSpec, SampleJob, build_dataset
from mtlbench.embeddings import DEFAULT_MODEL, SentenceEmbedder, default_model_folder
from mtlbench.errors import InputError
from mtlbench.evaluation.dummy import write_dummy_submission
from mtlbench.evaluation.submission import open_submission
from mtlbench.evaluation.submission_writer import SubmissionWriter
from mtlbench.tasks.base import TextLabel
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.text import TextTask

LABELS = ("a", "b", "c")
SIZE = 6  # frames are 6x6: nothing here looks at pixels

# (sample_id, split, landmark ids, report, report keyword, caption); the sequence is the id's prefix.
FRAMES = (
    # train: a on 3 of 4 frames, b on exactly half, c on 1; the report "Die Straße ..." 3 times; the
    # two captions twice each (a tie, broken by text order)
    ("r1_f1", "train", (0, 1), "Die Bulla wird eröffnet.", "Bulla", "the bulla is opened"),
    ("r1_f2", "train", (0,), "Die Straße zur Stirnhöhle ist frei.", "Stirnhöhle", "the bulla is opened"),
    ("r2_f1", "train", (0, 1, 2), "Die Straße zur Stirnhöhle ist frei.", "Stirnhöhle", "the sinus is open"),
    ("r2_f2", "train", (), "Die Straße zur Stirnhöhle ist frei.", "Stirnhöhle", "the sinus is open"),
    ("v1_f1", "val", (1,), "Das Septum ist gerade.", "Septum", "the septum is straight"),
    # test: three sequences of two frames
    ("t1_f1", "test", (0,), "Die Bulla wird eröffnet.", "Bulla", "The endoscope enters the left nasal cavity."),
    ("t1_f2", "test", (0, 1), "Die Stirnhöhle wird gespült.", "Stirnhöhle", "The bulla is opened with a curette."),
    ("t2_f1", "test", (), "Das Septum wird begradigt.", "Septum", "A polyp is removed."),
    ("t2_f2", "test", (2,), "Die Kieferhöhle ist frei.", "Kieferhöhle", "The septum is straightened."),
    ("t3_f1", "test", (0, 2), "Der Polyp wird entfernt.", "Polyp", "The sinus is irrigated with saline."),
    ("t3_f2", "test", (1,), "Die Schleimhaut ist gerötet und weiß.", "Schleimhaut", "The mucosa is inflamed."),
)
TEST_IDS = tuple(frame[0] for frame in FRAMES if frame[1] == "test")
TRUTH = np.array([[label in frame[2] for label in range(3)] for frame in FRAMES if frame[1] == "test"], dtype=int)

# A landmarks prediction per test frame: decisions and (not always agreeing) scores.
DECISIONS = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 1]])
SCORES = np.array([[0.9, 0.2, 0.1], [0.8, 0.4, 0.3], [0.3, 0.1, 0.2], [0.6, 0.3, 0.7], [0.4, 0.3, 0.9], [0.2, 0.7, 0.6]])

# Report predictions (German), with the tokens each side has, written out by hand.
REPORT_PREDICTIONS = (
    "Die Bulla wird eröffnet.",
    "Die Stirnho\u0308hle ist frei.",  # "ö" decomposed: still one word, and the keyword
    "DAS SEPTUM ist gerade!",
    "Die Kieferhöhlen sind frei.",  # keyword "Kieferhöhle" is not a whole word here
    "Polypen werden entfernt.",  # nor is "Polyp"
    "Die Schleimhaut ist weiß.",
)
REPORT_HYPOTHESIS_TOKENS = (
    ["die", "bulla", "wird", "eröffnet"],
    ["die", "stirnhöhle", "ist", "frei"],
    ["das", "septum", "ist", "gerade"],
    ["die", "kieferhöhlen", "sind", "frei"],
    ["polypen", "werden", "entfernt"],
    ["die", "schleimhaut", "ist", "weiß"],
)
REPORT_REFERENCE_TOKENS = (
    ["die", "bulla", "wird", "eröffnet"],
    ["die", "stirnhöhle", "wird", "gespült"],
    ["das", "septum", "wird", "begradigt"],
    ["die", "kieferhöhle", "ist", "frei"],
    ["der", "polyp", "wird", "entfernt"],
    ["die", "schleimhaut", "ist", "gerötet", "und", "weiß"],
)
# ASCII captions: rouge-score's and nltk's own tokenization applies.
CAPTION_PREDICTIONS = (
    "the endoscope enters the nasal cavity",
    "The bulla is opened.",
    "polyp removed",
    "The septum is straightened.",
    "saline irrigation of the sinus",
    "",  # an empty text is a valid prediction
)


def frames_of(split: str) -> list[tuple]:
    return [frame for frame in FRAMES if frame[1] == split]


def build(out: Path) -> DatasetCard:
    spec = DatasetSpec(
        name="tinytext",
        version="1.0",
        builder_version="1",
        source={"description": "in-memory multilabel and text frames"},
        tasks=(MultilabelTask("landmarks", LABELS), TextTask("report", ("keyword", "previous")), TextTask("caption")),
        splits=("train", "val", "test"),
        build_parameters={},
        splits_from="test",
    )
    jobs, previous = [], {}
    for index, (sample_id, split, landmarks, report, keyword, caption) in enumerate(FRAMES):
        sequence, frame = sample_id.split("_")
        labels = {
            "landmarks": landmarks,
            "report": TextLabel(report, (("keyword", keyword), ("previous", previous.get(sequence, "")))),
            "caption": caption,
        }
        previous[sequence] = report
        jobs.append(SampleJob(sample_id, split, sequence, frame, SeededImage(index, SIZE, SIZE), labels))
    return read_dataset(build_dataset(spec, jobs, [], out))


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> DatasetCard:
    return build(tmp_path_factory.mktemp("dataset") / "tinytext")


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    """A second, independent copy of the default model (the scorer holds its own)."""
    return SentenceEmbedder()


# --- writing submissions by hand ------------------------------------------------------------------


def landmarks_csv(decisions=DECISIONS, scores=SCORES, ids=TEST_IDS) -> str:
    header = ["sample_id", *LABELS] + ([f"score_{label}" for label in LABELS] if scores is not None else [])
    lines = [",".join(header)]
    for row, sample_id in enumerate(ids):
        cells = [sample_id, *map(str, decisions[row])] + ([str(value) for value in scores[row]] if scores is not None else [])
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def jsonl(texts, ids=TEST_IDS) -> str:
    return "".join(json.dumps({"sample_id": sample_id, "text": text}, ensure_ascii=False) + "\n" for sample_id, text in zip(ids, texts))


def write_submission(folder: Path, card: DatasetCard, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (folder / "submission.json").write_text(json.dumps({"method": "unit", "dataset_fingerprint": card.fingerprint, "split": "test"}))
    return folder


def full_submission(folder: Path, card: DatasetCard) -> Path:
    return write_submission(
        folder, card, {"landmarks.csv": landmarks_csv(), "report.jsonl": jsonl(REPORT_PREDICTIONS), "caption.jsonl": jsonl(CAPTION_PREDICTIONS)}
    )


def refusal(folder: Path, card: DatasetCard, **options) -> InputError:
    with pytest.raises(InputError) as caught, open_submission(folder, card, "test", **options):
        pass
    assert "\n" not in str(caught.value)
    return caught.value


# --- 1. reading <task>.csv --------------------------------------------------------------------------


def test_multilabel_file_parses_decisions_and_scores(card, tmp_path):
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": landmarks_csv()})
    with open_submission(folder, card, "test") as submission:
        assert submission.tasks == ("landmarks",)
        predictions = submission.predictions["landmarks"]
    assert list(predictions) == list(TEST_IDS)
    for row, sample_id in enumerate(TEST_IDS):
        assert predictions[sample_id].present.dtype == bool
        assert predictions[sample_id].present.tolist() == DECISIONS[row].astype(bool).tolist()
        assert predictions[sample_id].scores.dtype == np.float64
        assert predictions[sample_id].scores.tolist() == SCORES[row].tolist()


def test_multilabel_columns_in_any_order_bom_blank_lines_crlf_and_no_scores(card, tmp_path):
    # header in another order, score columns in yet another; BOM; CRLF line ends; blank lines; spaces
    text = (
        "\ufeffc,score_b,sample_id,b,score_c,a,score_a\r\n"
        "\r\n"
        "0,0.25,t1_f1,1,1,0,0.5\r\n"
        "1, 1 ,t1_f2, 0 ,0,1,0\r\n"
        "\r\n"
    )
    ids = ("t1_f1", "t1_f2")
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": text})
    with open_submission(folder, card, "test", allow_missing=True) as submission:
        predictions = submission.predictions["landmarks"]
        assert submission.missing == {"landmarks": tuple(i for i in TEST_IDS if i not in ids)}
    assert predictions["t1_f1"].present.tolist() == [False, True, False]  # a, b, c whatever the column order
    assert predictions["t1_f1"].scores.tolist() == [0.5, 0.25, 1.0]
    assert predictions["t1_f2"].present.tolist() == [True, False, True]
    assert predictions["t1_f2"].scores.tolist() == [0.0, 1.0, 0.0]
    without = write_submission(tmp_path / "plain", card, {"landmarks.csv": landmarks_csv(scores=None)})
    with open_submission(without, card, "test") as submission:
        assert all(prediction.scores is None for prediction in submission.predictions["landmarks"].values())


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


VALID_CSV = landmarks_csv()
PLAIN_CSV = landmarks_csv(scores=None)


MULTILABEL_REFUSALS = [
    ("", "empty: expected the header sample_id,a,b,c"),
    (replace_line(PLAIN_CSV, 1, "sample_id,a,b"), "header lacks the column(s) c (found: sample_id,a,b)"),
    (replace_line(PLAIN_CSV, 1, "sample_id,a,c"), "header lacks the column(s) b (found: sample_id,a,c)"),
    (
        replace_line(replace_line(PLAIN_CSV, 1, "sample_id,a,b,c,d"), 2, "t1_f1,1,0,0,1"),
        "unknown column(s) 'd': the columns are sample_id, one per label of landmarks and optionally score_<label> for every label, e.g. score_a",
    ),
    (
        replace_line(replace_line(PLAIN_CSV, 1, "sample_id,a,b,c,A"), 2, "t1_f1,1,0,0,1"),
        "unknown column(s) 'A': the columns are sample_id, one per label of landmarks and optionally score_<label> for every label, e.g. score_a",
    ),
    (
        replace_line(replace_line(PLAIN_CSV, 1, "sample_id,a,b,c,score_a"), 2, "t1_f1,1,0,0,0.5"),
        "give a score column for every label or none; lacking: score_b, score_c",
    ),
    ("sample_id,a,b,c,a\n", "header repeats the column(s) a"),
    (replace_line(PLAIN_CSV, 2, "t1_f1,2,0,0"), "line 2: label 'a' is '2', not 0 or 1"),
    (replace_line(PLAIN_CSV, 3, "t1_f2,1,yes,0"), "line 3: label 'b' is 'yes', not 0 or 1"),
    (replace_line(PLAIN_CSV, 4, "t2_f1,0,0,0.5"), "line 4: label 'c' is '0.5', not 0 or 1"),
    (replace_line(PLAIN_CSV, 2, "t1_f1,1.0,0,0"), "line 2: label 'a' is '1.0', not 0 or 1"),
    (replace_line(PLAIN_CSV, 2, "t1_f1,,0,0"), "line 2: label 'a' is '', not 0 or 1"),
    (replace_line(VALID_CSV, 2, "t1_f1,1,0,0,1.5,0.2,0.1"), "line 2: score_a '1.5' is not a probability in [0, 1]"),
    (replace_line(VALID_CSV, 3, "t1_f2,1,0,0,0.8,-0.1,0.3"), "line 3: score_b '-0.1' is not a probability in [0, 1]"),
    (replace_line(VALID_CSV, 3, "t1_f2,1,0,0,0.8,0.4,nan"), "line 3: score_c 'nan' is not a probability in [0, 1]"),
    (replace_line(VALID_CSV, 3, "t1_f2,1,0,0,0.8,0.4,inf"), "line 3: score_c 'inf' is not a probability in [0, 1]"),
    (replace_line(VALID_CSV, 3, "t1_f2,1,0,0,0.8,high,0.3"), "line 3: score_b 'high' is not a number"),
    (replace_line(PLAIN_CSV, 7, "zz_f1,0,1,0"), "line 7: sample_id 'zz_f1' is not a sample of dataset 'tinytext'"),
    (replace_line(PLAIN_CSV, 7, "r1_f1,0,1,0"), "line 7: sample_id 'r1_f1' is a sample of split 'train', not 'test'"),
    (replace_line(PLAIN_CSV, 7, "v1_f1,0,1,0"), "line 7: sample_id 'v1_f1' is a sample of split 'val', not 'test'"),
    (replace_line(PLAIN_CSV, 7, "t1_f2,0,1,0"), "line 7: duplicate sample_id 't1_f2' (first on line 3)"),
    (replace_line(PLAIN_CSV, 4, "t2_f1,0,0"), "line 4: expected 4 fields, found 3"),
    (replace_line(PLAIN_CSV, 4, "t2_f1,0,0,0,1"), "line 4: expected 4 fields, found 5"),
    (PLAIN_CSV.replace("t3_f2,0,1,1\n", ""), "1 of 6 predictions missing: t3_f2 (--allow-missing scores them as wrong)"),
]


@pytest.mark.parametrize(("text", "message"), MULTILABEL_REFUSALS, ids=[message[:48] for _, message in MULTILABEL_REFUSALS])
def test_multilabel_file_refusals(card, tmp_path, text, message):
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": text})
    error = refusal(folder, card)
    path = folder / "landmarks.csv"
    assert error.where == str(path)
    assert str(error) == f"{path}: {message}"


# --- 2. scoring multilabel --------------------------------------------------------------------------


def test_multilabel_scores_by_hand_and_against_scikit_learn(card, tmp_path):
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": landmarks_csv()})
    section = mtlbench.evaluate(folder, card, "test", bootstrap=0)["landmarks"]
    # per label (TP, FP, FN): a (2, 1, 1), b (1, 0, 1), c (2, 1, 0)
    assert section["micro_f1"] == pytest.approx(10 / 14)
    assert section["macro_f1"] == pytest.approx((4 / 6 + 2 / 3 + 4 / 5) / 3)
    # per frame F1: 1, 2/3, 1 (both empty), 2/3, 2/3, 2/3
    assert section["samples_f1"] == pytest.approx(7 / 9)
    assert section["subset_accuracy"] == pytest.approx(2 / 6)
    assert section["hamming_loss"] == pytest.approx(4 / 18)
    assert [(row["name"], row["support"], row["predicted"]) for row in section["per_class"]] == [("a", 3, 3), ("b", 2, 1), ("c", 2, 3)]
    assert section["samples"] == 6 and section["scored"] is True

    # the same numbers from scikit-learn
    micro = precision_recall_fscore_support(TRUTH, DECISIONS, average="micro", zero_division=0)
    assert (section["micro_precision"], section["micro_recall"], section["micro_f1"]) == pytest.approx(micro[:3])
    assert section["macro_f1"] == pytest.approx(f1_score(TRUTH, DECISIONS, average="macro", zero_division=0))
    assert section["weighted_f1"] == pytest.approx(f1_score(TRUTH, DECISIONS, average="weighted", zero_division=0))
    assert section["samples_f1"] == pytest.approx(f1_score(TRUTH, DECISIONS, average="samples", zero_division=1))
    assert section["subset_accuracy"] == pytest.approx(accuracy_score(TRUTH, DECISIONS))
    assert section["hamming_loss"] == pytest.approx(hamming_loss(TRUTH, DECISIONS))
    per_label = f1_score(TRUTH, DECISIONS, average=None, zero_division=0)
    assert [row["f1"] for row in section["per_class"]] == pytest.approx(per_label.tolist())
    # the scores, not the decisions, give the average precision
    assert section["mean_average_precision"] == pytest.approx(average_precision_score(TRUTH, SCORES, average="macro"))
    assert [row["average_precision"] for row in section["per_class"]] == pytest.approx(
        average_precision_score(TRUTH, SCORES, average=None).tolist()
    )


def test_multilabel_without_scores_has_no_map(card, tmp_path):
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": landmarks_csv(scores=None)})
    section = mtlbench.evaluate(folder, card, "test", bootstrap=0)["landmarks"]
    assert section["micro_f1"] == pytest.approx(10 / 14)
    assert section["mean_average_precision"] is None
    assert section["null_reasons"]["mean_average_precision"] == "no scores given"


def test_a_missing_label_set_counts_as_every_label_wrong(card, tmp_path):
    # t3_f2 (truth {b}) left out: scored as the complement {a, c}, scores 1 - truth
    ids = TEST_IDS[:5]
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": landmarks_csv(DECISIONS[:5], SCORES[:5], ids)})
    results = mtlbench.evaluate(folder, card, "test", bootstrap=0, allow_missing=True)
    section = results["landmarks"]
    # per label (TP, FP, FN): a (2, 2, 1), b (0, 0, 2), c (2, 1, 0)
    assert section["micro_f1"] == pytest.approx(8 / 14)
    assert section["macro_f1"] == pytest.approx((4 / 7 + 0 + 4 / 5) / 3)
    assert section["samples_f1"] == pytest.approx((1 + 2 / 3 + 1 + 2 / 3 + 2 / 3 + 0) / 6)
    assert section["subset_accuracy"] == pytest.approx(2 / 6)
    assert section["hamming_loss"] == pytest.approx(6 / 18)
    complement = np.vstack([DECISIONS[:5], 1 - TRUTH[5]])
    assert section["micro_f1"] == pytest.approx(f1_score(TRUTH, complement, average="micro"))
    assert section["hamming_loss"] == pytest.approx(hamming_loss(TRUTH, complement))
    scores = np.vstack([SCORES[:5], 1.0 - TRUTH[5]])
    assert section["mean_average_precision"] == pytest.approx(average_precision_score(TRUTH, scores, average="macro"))
    assert results["submission"]["missing"] == {"landmarks": {"count": 1, "examples": ["t3_f2"]}}
    assert "every label wrong" in results["definitions"]["missing_predictions"]["landmarks"]


# --- 3. writing <task>.csv ----------------------------------------------------------------------------


def test_writer_round_trip(card, tmp_path):
    confidences = {
        "t1_f1": [0.5, 0.49999999999999994, 1.0],
        "t1_f2": [0.0, 1 / 3, 2 / 3],
        "t2_f1": [0.1, 0.2, 0.30000000000000004],
        "t2_f2": [1.0, 1.0, 1.0],
        "t3_f1": [0.0, 0.0, 0.0],
        "t3_f2": [0.75, 0.5000000000000001, 1e-12],
    }
    texts = {
        "t1_f1": "Die Straße zur Stirnhöhle ist „frei“.",
        "t1_f2": 'Ein "Zitat" mit \\ Backslash',
        "t2_f1": "",
        "t2_f2": "Ä Ö Ü ä ö ü ß " * 10,
        "t3_f1": "x" * 1000,
        "t3_f2": "Die Stirnho\u0308hle",
    }
    out = tmp_path / "written"
    with SubmissionWriter(card, "test", out, {"method": "writer-test"}) as writer:
        for sample_id in TEST_IDS:
            writer.add(sample_id, {"landmarks": np.array(confidences[sample_id]), "report": texts[sample_id], "caption": texts[sample_id]})
    assert (out / "landmarks.csv").read_text(encoding="utf-8").splitlines()[0] == "sample_id,a,b,c,score_a,score_b,score_c"
    with open_submission(out, card, "test") as submission:
        assert submission.tasks == ("landmarks", "report", "caption")
        assert submission.meta["method"] == "writer-test" and submission.meta["dataset_fingerprint"] == card.fingerprint
        for sample_id in TEST_IDS:
            prediction = submission.predictions["landmarks"][sample_id]
            assert prediction.present.tolist() == [value >= 0.5 for value in confidences[sample_id]]
            assert prediction.scores.tolist() == confidences[sample_id]  # exactly the same floats
        assert submission.predictions["report"] == texts
        assert submission.predictions["caption"] == texts


def test_writer_refuses_what_the_reader_would(card, tmp_path):
    with pytest.raises(ValueError, match="t1_f1: landmarks needs 3 confidences in \\[0, 1\\]"):
        with SubmissionWriter(card, "test", tmp_path / "a", {}, tasks=["landmarks"]) as writer:
            writer.add("t1_f1", {"landmarks": [0.5, 1.5, 0.0]})
    with pytest.raises(ValueError, match="needs 3 confidences"):
        with SubmissionWriter(card, "test", tmp_path / "b", {}, tasks=["landmarks"]) as writer:
            writer.add("t1_f1", {"landmarks": [0.5, 0.5]})
    with pytest.raises(InputError, match="report prediction of t1_f1 holds the control character U\\+000A"):
        with SubmissionWriter(card, "test", tmp_path / "c", {}, tasks=["report"]) as writer:
            writer.add("t1_f1", {"report": "zwei\nZeilen"})
    # UTF-8 cannot hold a lone surrogate: refused by add (check_text), not a crash on close
    with pytest.raises(InputError, match="caption prediction of t2_f1 holds the lone surrogate U\\+D800"):
        with SubmissionWriter(card, "test", tmp_path / "d", {}, tasks=["caption"]) as writer:
            writer.add("t1_f1", {"caption": "gut"})
            writer.add("t2_f1", {"caption": "kaputt \ud800"})
    assert not any((tmp_path / name).exists() for name in "abcd")  # nothing half-written


def test_constant_dummy_predicts_the_train_majority(card, tmp_path):
    out = write_dummy_submission(card, "test", tmp_path / "constant", kind="constant")
    with open_submission(out, card, "test") as submission:
        landmarks = submission.predictions["landmarks"]
        report, caption = submission.predictions["report"], submission.predictions["caption"]
    # train: a on 3 of 4 frames (present), b on 2 of 4 (not more than half: absent), c on 1 of 4
    assert {sample_id: prediction.present.tolist() for sample_id, prediction in landmarks.items()} == {
        sample_id: [True, False, False] for sample_id in TEST_IDS
    }
    # the scores are the train shares, the exactly-half one just below the threshold
    scores = landmarks["t1_f1"].scores
    assert scores[0] == 0.75 and scores[2] == 0.25 and scores[1] < 0.5 and scores[1] == pytest.approx(0.5)
    # the most frequent train report; the captions tie (2 and 2): the first in text order
    assert report == dict.fromkeys(TEST_IDS, "Die Straße zur Stirnhöhle ist frei.")
    assert caption == dict.fromkeys(TEST_IDS, "the bulla is opened")
    section = mtlbench.evaluate(out, card, "test", bootstrap=0)["landmarks"]
    constant = np.tile([1, 0, 0], (6, 1))
    assert section["micro_f1"] == pytest.approx(f1_score(TRUTH, constant, average="micro"))


def test_random_dummy_is_valid_and_reproducible(card, tmp_path):
    first = write_dummy_submission(card, "test", tmp_path / "r1", kind="random", seed=3)
    second = write_dummy_submission(card, "test", tmp_path / "r2", kind="random", seed=3)
    for name in ("landmarks.csv", "report.jsonl", "caption.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    with open_submission(first, card, "test") as submission:
        train_reports = {frame[3] for frame in frames_of("train")}
        assert set(submission.predictions["report"].values()) <= train_reports
        for prediction in submission.predictions["landmarks"].values():
            assert prediction.present.tolist() == (prediction.scores >= 0.5).tolist()


# --- 4. reading <task>.jsonl ---------------------------------------------------------------------------


def test_text_file_parses_with_blank_lines_bom_crlf_and_empty_texts(card, tmp_path):
    lines = jsonl(REPORT_PREDICTIONS).splitlines()
    text = "\ufeff" + "\r\n".join([lines[0], "", "   ", *lines[1:]]) + "\r\n\r\n"
    folder = write_submission(tmp_path / "pred", card, {"report.jsonl": text, "caption.jsonl": jsonl(CAPTION_PREDICTIONS)})
    with open_submission(folder, card, "test") as submission:
        assert submission.tasks == ("report", "caption")
        assert submission.predictions["report"] == dict(zip(TEST_IDS, REPORT_PREDICTIONS))
        assert submission.predictions["caption"]["t3_f2"] == ""


def test_text_of_exactly_the_limit_is_accepted(card, tmp_path):
    texts = ["ß" * 1000, *REPORT_PREDICTIONS[1:]]
    folder = write_submission(tmp_path / "pred", card, {"report.jsonl": jsonl(texts)})
    with open_submission(folder, card, "test") as submission:
        assert submission.predictions["report"]["t1_f1"] == "ß" * 1000


VALID_JSONL = jsonl(REPORT_PREDICTIONS)
OBJECT_KEYS = 'expected an object with exactly the keys "sample_id" and "text"'


@pytest.mark.parametrize(
    ("line", "content", "message"),
    [
        (2, '{"sample_id": "t1_f2", "text": "x"', "line 2: not valid JSON (Expecting ',' delimiter: line 1 column 35 (char 34))"),
        (2, "t1_f2 Die Stirnhöhle", "line 2: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (2, '{"sample_id": "t1_f2", "text": "x", "score": 1}', f"line 2: {OBJECT_KEYS}"),
        (3, '{"sample_id": "t2_f1"}', f"line 3: {OBJECT_KEYS}"),
        (3, '{"id": "t2_f1", "text": "x"}', f"line 3: {OBJECT_KEYS}"),
        (3, '["t2_f1", "x"]', f"line 3: {OBJECT_KEYS}"),
        (3, '"t2_f1"', f"line 3: {OBJECT_KEYS}"),
        (2, '{"sample_id": "t1_f2", "sample_id": "t1_f2", "text": "x"}', "line 2: not valid JSON (key 'sample_id' occurs twice in one object)"),
        (4, '{"sample_id": 5, "text": "x"}', "line 4: sample_id must be a string, got 5"),
        (4, '{"sample_id": null, "text": "x"}', "line 4: sample_id must be a string, got None"),
        (5, '{"sample_id": "t3_f1", "text": "Glocke \\u0007"}', "line 5: text holds the control character U+0007"),
        (5, '{"sample_id": "t3_f1", "text": "zwei\\nZeilen"}', "line 5: text holds the control character U+000A"),
        (5, '{"sample_id": "t3_f1", "text": "Tab\\tStop"}', "line 5: text holds the control character U+0009"),
        (5, '{"sample_id": "t3_f1", "text": "Absatz\\u2029"}', "line 5: text holds the control character U+2029"),
        (5, '{"sample_id": "t3_f1", "text": "halb \\ud800"}', "line 5: text holds the lone surrogate U+D800, which UTF-8 cannot encode"),
        (6, json.dumps({"sample_id": "t3_f2", "text": "ä" * 1001}), "line 6: text has 1001 characters, more than the limit of 1000"),
        (6, '{"sample_id": "t3_f2", "text": 7}', "line 6: text must be text, got int"),
        (6, '{"sample_id": "t3_f2", "text": null}', "line 6: text must be text, got NoneType"),
        (6, '{"sample_id": "zz_f9", "text": "x"}', "line 6: sample_id 'zz_f9' is not a sample of dataset 'tinytext'"),
        (6, '{"sample_id": "r2_f2", "text": "x"}', "line 6: sample_id 'r2_f2' is a sample of split 'train', not 'test'"),
        (6, '{"sample_id": "v1_f1", "text": "x"}', "line 6: sample_id 'v1_f1' is a sample of split 'val', not 'test'"),
        (6, '{"sample_id": "t1_f2", "text": "x"}', "line 6: duplicate sample_id 't1_f2' (first on line 2)"),
    ],
)
def test_text_file_refusals(card, tmp_path, line, content, message):
    folder = write_submission(tmp_path / "pred", card, {"report.jsonl": replace_line(VALID_JSONL, line, content)})
    error = refusal(folder, card)
    path = folder / "report.jsonl"
    assert error.where.startswith(str(path))
    assert str(error) == f"{path}: {message}"


def test_text_file_line_numbers_count_blank_lines(card, tmp_path):
    lines = VALID_JSONL.splitlines()
    text = "\n".join(["", lines[0], "", '{"sample_id": "t1_f2", "text": "\\u001b[31m"}', *lines[2:]]) + "\n"
    folder = write_submission(tmp_path / "pred", card, {"report.jsonl": text})
    assert str(refusal(folder, card)) == f"{folder / 'report.jsonl'}: line 4: text holds the control character U+001B"


def test_text_file_raw_control_character_is_not_json(card, tmp_path):
    # a raw tab inside the JSON string (not escaped) is invalid JSON
    text = replace_line(VALID_JSONL, 2, '{"sample_id": "t1_f2", "text": "a\tb"}')
    folder = write_submission(tmp_path / "pred", card, {"report.jsonl": text})
    assert str(refusal(folder, card)).startswith(f"{folder / 'report.jsonl'}: line 2: not valid JSON (Invalid control character")


def test_text_file_not_utf8_and_missing_texts(card, tmp_path):
    raw = VALID_JSONL.encode("utf-8").replace("Kieferhöhlen".encode("utf-8"), "Kieferhöhlen".encode("latin-1"))
    offset = raw.index("Kieferh".encode()) + len("Kieferh")
    folder = write_submission(tmp_path / "latin", card, {"report.jsonl": raw})
    assert str(refusal(folder, card)) == f"{folder / 'report.jsonl'}: not UTF-8 text (byte {offset})"
    short = write_submission(tmp_path / "short", card, {"caption.jsonl": jsonl(CAPTION_PREDICTIONS[:4])})
    assert str(refusal(short, card)) == (
        f"{short / 'caption.jsonl'}: 2 of 6 predictions missing: t3_f1, t3_f2 (--allow-missing scores them as wrong)"
    )
    empty = write_submission(tmp_path / "empty", card, {"caption.jsonl": "\n\n"})
    assert "6 of 6 predictions missing" in str(refusal(empty, card))


# --- 5. scoring text ---------------------------------------------------------------------------------------


def nltk_bleu(hypotheses: list[list[str]], references: list[list[str]], order: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns when an order has no match
        return corpus_bleu([[reference] for reference in references], hypotheses, weights=(1 / order,) * order)


def rouge_l_of_tokens(hypothesis: list[str], reference: list[str]) -> float:
    return _score_lcs(reference, hypothesis).fmeasure


def cosine(embedder: SentenceEmbedder, hypothesis: str, reference: str) -> float:
    """One text at a time, as float64: no batch, no padding shared with the scorer."""
    h, r = (embedder.encode([text])[0].astype(np.float64) for text in (hypothesis, reference))
    return float(h @ r / (np.linalg.norm(h) * np.linalg.norm(r)))


@pytest.fixture(scope="module")
def text_results(card, tmp_path_factory):
    folder = full_submission(tmp_path_factory.mktemp("text") / "pred", card)
    return mtlbench.evaluate(folder, card, "test", bootstrap=0)


def test_report_bleu_rouge_exact_match_by_hand(text_results):
    report = text_results["report"]
    # clipped unigram matches 4+2+2+2+1+4 of 23, bigram matches 3+1+1+0+0+2 of 17; lengths 23 vs 26
    brevity = math.exp(1 - 26 / 23)
    assert report["bleu_1"] == pytest.approx(brevity * 15 / 23)
    assert report["bleu_2"] == pytest.approx(brevity * math.sqrt(15 / 23 * 7 / 17))
    # LCS F per pair: 1, 1/2, 1/2, 1/2, 2/7 (LCS 1 of 3 and 4), 4/5 (LCS 4 of 4 and 6)
    assert report["rouge_l"] == pytest.approx((1 + 0.5 + 0.5 + 0.5 + 2 / 7 + 4 / 5) / 6)
    assert report["exact_match"] == pytest.approx(1 / 6)
    assert report["pairs"] == 6
    # the same from nltk and rouge-score's LCS on the hand-written tokens
    hypotheses, references = list(REPORT_HYPOTHESIS_TOKENS), list(REPORT_REFERENCE_TOKENS)
    for order in (1, 2, 3, 4):
        assert report[f"bleu_{order}"] == pytest.approx(nltk_bleu(hypotheses, references, order), abs=1e-12)
    expected_rouge = np.mean([rouge_l_of_tokens(h, r) for h, r in zip(hypotheses, references)])
    assert report["rouge_l"] == pytest.approx(expected_rouge)


def test_caption_bleu_and_rouge_equal_nltk_and_rouge_score(text_results):
    caption = text_results["caption"]
    references = [frame[5] for frame in frames_of("test")]
    hypotheses = [rouge_tokenize(text, None) for text in CAPTION_PREDICTIONS]
    tokens = [rouge_tokenize(text, None) for text in references]
    assert hypotheses[1] == ["the", "bulla", "is", "opened"] and hypotheses[5] == []
    for order in (1, 2, 3, 4):
        assert caption[f"bleu_{order}"] == pytest.approx(nltk_bleu(hypotheses, tokens, order), abs=1e-12)
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    expected = np.mean([scorer.score(reference, hypothesis)["rougeL"].fmeasure for hypothesis, reference in zip(CAPTION_PREDICTIONS, references)])
    assert caption["rouge_l"] == pytest.approx(expected)
    assert caption["exact_match"] == pytest.approx(1 / 6)  # "The septum is straightened." only


def test_keyword_hit_rate_whole_words_with_umlauts(text_results):
    report = text_results["report"]
    # hits: Bulla, Stirnhöhle (written with a combining diaeresis), SEPTUM, Schleimhaut;
    # misses: Kieferhöhle in "Kieferhöhlen", Polyp in "Polypen"
    assert report["keyword_hit_rate"] == pytest.approx(4 / 6)
    assert "keyword_hit_rate" not in report["null_reasons"]
    caption = text_results["caption"]
    assert caption["keyword_hit_rate"] is None
    assert caption["null_reasons"]["keyword_hit_rate"] == "task 'caption' has no 'keyword' context field"


def test_cosine_similarity_equals_an_independent_embedder(text_results, embedder):
    for task, predictions, column in (("report", REPORT_PREDICTIONS, 3), ("caption", CAPTION_PREDICTIONS, 5)):
        references = [frame[column] for frame in frames_of("test")]
        expected = np.mean([cosine(embedder, h, r) for h, r in zip(predictions, references)])
        assert text_results[task]["cosine_similarity"] == pytest.approx(expected, abs=1e-5), task
    # the independent embedder is the same model: an exact prediction has cosine 1
    assert cosine(embedder, REPORT_PREDICTIONS[0], FRAMES[5][3]) == pytest.approx(1.0, abs=1e-6)


def test_embedding_model_is_named_and_hashed(text_results):
    weights = hashlib.sha256((default_model_folder() / "model.safetensors").read_bytes()).hexdigest()
    for task in ("report", "caption"):
        model = text_results[task]["embedding_model"]
        assert model["name"] == DEFAULT_MODEL and model["name"].endswith("all-MiniLM-L6-v2")
        assert re.fullmatch(r"[0-9a-f]{64}", model["weights_sha256"]) and model["weights_sha256"] == weights
        assert model["dimension"] == 384
    assert "cosine_similarity" in text_results["definitions"]["report"]


def test_a_missing_text_is_empty_with_cosine_zero(card, tmp_path, embedder):
    # t3_f1 ("Polypen werden entfernt.") left out of the report
    kept = [i for i in range(6) if i != 4]
    folder = write_submission(
        tmp_path / "pred", card, {"report.jsonl": jsonl([REPORT_PREDICTIONS[i] for i in kept], [TEST_IDS[i] for i in kept])}
    )
    results = mtlbench.evaluate(folder, card, "test", bootstrap=0, allow_missing=True)
    report = results["report"]
    # unigrams 14 of 4+4+4+4+1+4 (an empty hypothesis counts one unmatched n-gram), bigrams 7 of 3+3+3+3+1+3;
    # hypothesis length 20 against 26
    brevity = math.exp(1 - 26 / 20)
    assert report["bleu_2"] == pytest.approx(brevity * math.sqrt(14 / 21 * 7 / 16))
    hypotheses = [list(tokens) if i != 4 else [] for i, tokens in enumerate(REPORT_HYPOTHESIS_TOKENS)]
    assert report["bleu_2"] == pytest.approx(nltk_bleu(hypotheses, list(REPORT_REFERENCE_TOKENS), 2), abs=1e-12)
    assert report["rouge_l"] == pytest.approx((1 + 0.5 + 0.5 + 0.5 + 0 + 4 / 5) / 6)
    assert report["keyword_hit_rate"] == pytest.approx(4 / 6)
    references = [frame[3] for frame in frames_of("test")]
    expected = sum(cosine(embedder, REPORT_PREDICTIONS[i], references[i]) for i in kept) / 6
    assert report["cosine_similarity"] == pytest.approx(expected, abs=1e-5)
    # a given empty text is not the same as a missing one: it has an embedding
    assert cosine(embedder, "", references[4]) != 0.0
    assert results["submission"]["missing"] == {"report": {"count": 1, "examples": ["t3_f1"]}}
    assert results["caption"]["scored"] is False and results["caption"]["bleu_2"] is None


# --- 6. bootstrap --------------------------------------------------------------------------------------


def test_bootstrap_intervals_contain_the_point_estimates(card, tmp_path):
    folder = full_submission(tmp_path / "pred", card)
    results = mtlbench.evaluate(folder, card, "test", bootstrap=200, seed=1)
    assert results["counts"] == {"frames": 6, "sequences": 3}
    for task, keys in (("landmarks", ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")),
                       ("report", ("bleu_2", "rouge_l", "cosine_similarity", "exact_match", "keyword_hit_rate")),
                       ("caption", ("bleu_2", "rouge_l", "cosine_similarity"))):
        section = results[task]
        for key in keys:
            interval = section["ci"][key]
            assert interval is not None, (task, key, section["null_reasons"])
            assert interval["low"] <= section[key] + 1e-12 and section[key] - 1e-12 <= interval["high"], (task, key)
            assert interval["low"] < interval["high"], (task, key)  # three different sequences
    assert results["caption"]["ci"]["keyword_hit_rate"] is None
    again = mtlbench.evaluate(folder, card, "test", bootstrap=200, seed=1)
    assert again["report"]["ci"] == results["report"]["ci"] and again["landmarks"]["ci"] == results["landmarks"]["ci"]


def test_bootstrap_off_gives_no_intervals_with_the_reason(text_results, card, tmp_path):
    for task in ("report", "caption"):
        assert text_results[task]["ci"] is None
        assert text_results[task]["null_reasons"]["ci"] == "bootstrap turned off (--bootstrap 0)"
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": landmarks_csv()})
    section = mtlbench.evaluate(folder, card, "test", bootstrap=0)["landmarks"]
    assert section["ci"] is None and section["null_reasons"]["ci"] == "bootstrap turned off (--bootstrap 0)"


# --- 7. the CLI ----------------------------------------------------------------------------------------------


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtlbench", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_evaluates_writes_results_and_plots(card, tmp_path):
    folder = full_submission(tmp_path / "pred", card)
    out, plots = tmp_path / "results.json", tmp_path / "plots"
    result = run_cli("evaluate", folder, "--dataset", card.root, "--out", out, "--plots", plots, "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    assert "micro-F1" in result.stdout and "BLEU-2" in result.stdout and "Per label of landmarks" in result.stdout
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["landmarks"]["micro_f1"] == pytest.approx(10 / 14)
    assert results["report"]["keyword_hit_rate"] == pytest.approx(4 / 6)
    assert results["submission"]["tasks_scored"] == ["landmarks", "report", "caption"]
    assert sorted(path.name for path in plots.iterdir()) == ["caption_text.png", "landmarks_f1.png", "report_text.png"]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in plots.iterdir())


def test_cli_refuses_a_bad_file_in_one_line(card, tmp_path):
    folder = write_submission(tmp_path / "pred", card, {"landmarks.csv": replace_line(PLAIN_CSV, 3, "t1_f2,1,yes,0")})
    result = run_cli("evaluate", folder, "--dataset", card.root, "--out", tmp_path / "r.json", "--bootstrap", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {folder / 'landmarks.csv'}: line 3: label 'b' is 'yes', not 0 or 1"
    assert not (tmp_path / "r.json").exists()
    bad_text = write_submission(tmp_path / "text", card, {"caption.jsonl": replace_line(jsonl(CAPTION_PREDICTIONS), 2, '{"sample_id": "t1_f2"}')})
    result = run_cli("evaluate", bad_text, "--dataset", card.root)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {bad_text / 'caption.jsonl'}: line 2: {OBJECT_KEYS}"
    good = write_submission(tmp_path / "good", card, {"caption.jsonl": jsonl(CAPTION_PREDICTIONS)})
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    result = run_cli("evaluate", good, "--dataset", card.root, "--embedding-model", not_a_model, "--out", tmp_path / "m.json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {not_a_model / 'config.json'}: missing: a Hugging Face / sentence-transformers model folder has its config.json here"
    assert not (tmp_path / "m.json").exists()


def test_cli_format_lists_the_multilabel_header_and_jsonl(card):
    result = run_cli("evaluate", "--format", "--dataset", card.root)
    assert result.returncode == 0, result.stderr
    assert "header: sample_id,a,b,c" in result.stdout
    assert "labels (id name): 0 a, 1 b, 2 c" in result.stdout
    for name in ("landmarks.csv", "report.jsonl", "caption.jsonl"):
        assert name in result.stdout
    assert '{"sample_id": ..., "text": ...}' in result.stdout
    assert "at most 1000 characters" in result.stdout
    generic = run_cli("evaluate", "--format")
    assert generic.returncode == 0
    assert "<task>.csv: sample_id, a 0/1 column per label" in generic.stdout and "<task>.jsonl" in generic.stdout
