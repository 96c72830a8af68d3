"""`mtlbench.evaluate` end to end: perfect and known-wrong submissions, stable keys, the CLI."""

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mtlbench
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError

STABLE_KEYS = {
    "activity": ("accuracy", "balanced_accuracy", "macro_f1"),
    "segmentation": ("miou", "miou_foreground", "mdice", "pixel_accuracy", "challenge_iou", "isi_iou", "mciou"),
}


@pytest.fixture
def dataset(endovis_source: Path, tmp_path: Path) -> Path:
    return build_mtlendovis(endovis_source, tmp_path / "ds")


def write_submission(folder: Path, card, split: str, activity_of=None, mask_of=None) -> Path:
    """A submission whose activity and mask for each sample come from the given functions (default: the truth)."""
    (folder / "masks").mkdir(parents=True)
    rows = [("sample_id", "activity")]
    for sample in card.split(split):
        truth = np.asarray(Image.open(card.root / sample.mask))
        prediction = truth.copy() if mask_of is None else mask_of(sample, truth)
        prediction[prediction == 255] = 0
        Image.fromarray(prediction.astype(np.uint8)).save(folder / "masks" / f"{sample.sample_id}.png")
        rows.append((sample.sample_id, sample.activity if activity_of is None else activity_of(sample)))
    with open(folder / "activities.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return folder


def test_perfect_predictions_score_one(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    results = mtlbench.evaluate(write_submission(tmp_path / "perfect", card, "test"), dataset, "test", bootstrap=50)
    for task, keys in STABLE_KEYS.items():
        for key in keys:
            assert results[task][key] == pytest.approx(1.0), (task, key)
    assert results["submission"]["tasks_scored"] == ["activity", "segmentation"]
    assert results["dataset"]["fingerprint"] == card.fingerprint
    assert results["counts"] == {"frames": 3, "sequences": 1}


def test_known_errors_give_hand_computed_scores(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    # Test frames are 8x10 stripes: class 0 in columns 0-2, class 1 in 3-5, class 4 in 6-9.
    # Predicting class 1 in column 2 as well: class 0 IoU 16/24, class 1 IoU 24/32, class 4 IoU 1.
    def widen_class_1(sample, truth):
        prediction = truth.copy()
        prediction[:, 2] = 1
        return prediction

    wrong_first = {card.split("test")[0].sample_id}
    activity_of = lambda sample: "Cutting" if sample.sample_id in wrong_first else sample.activity  # noqa: E731
    results = mtlbench.evaluate(
        write_submission(tmp_path / "sub", card, "test", activity_of, widen_class_1), dataset, "test", bootstrap=0
    )
    segmentation = results["segmentation"]
    assert segmentation["miou"] == pytest.approx((16 / 24 + 24 / 32 + 1) / 3)
    assert segmentation["miou_foreground"] == pytest.approx((24 / 32 + 1) / 2)
    assert segmentation["pixel_accuracy"] == pytest.approx(1 - 24 / 240)
    # Dice 2 TP / (GT + predicted) over the 3 frames: class 0 96 / 120, class 1 144 / 168, class 4 1
    assert segmentation["mdice"] == pytest.approx((96 / 120 + 144 / 168 + 1) / 3)
    # per frame, foreground classes only: class 1 IoU 24 / 32 and class 4 IoU 1 in every frame
    for key in ("challenge_iou", "isi_iou", "mciou"):
        assert segmentation[key] == pytest.approx((24 / 32 + 1) / 2), key
    activity = results["activity"]
    assert activity["accuracy"] == pytest.approx(2 / 3)
    assert activity["balanced_accuracy"] == pytest.approx(2 / 3)  # recall of Grasping, the only true activity
    assert activity["macro_f1"] == pytest.approx((4 / 5 + 0) / 2)  # Grasping F1 4/5, Cutting (predicted once) 0
    assert activity["ci"] is None


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # balanced accuracy, as documented
def test_a_random_dummy_scores_as_scikit_learn_says(dataset: Path, tmp_path: Path):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, jaccard_score

    card = read_dataset(dataset)
    submission = tmp_path / "dummy"
    subprocess.run(
        [sys.executable, "-m", "mtlbench", "-q", "evaluate", "--write-dummy", submission, "--dataset", dataset, "--kind", "random"],
        check=True,
    )
    results = mtlbench.evaluate(submission, card, "test", bootstrap=100)
    samples = card.split("test")
    with open(submission / "activities.csv", newline="") as handle:
        predicted_names = {row["sample_id"]: row["activity"] for row in csv.DictReader(handle)}
    truth = [sample.activity_id for sample in samples]
    predicted = [card.activities.index(predicted_names[sample.sample_id]) for sample in samples]
    labels = sorted(set(truth) | set(predicted))
    activity = results["activity"]
    assert activity["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert activity["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert activity["macro_f1"] == pytest.approx(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))
    assert activity["auroc_macro_ovr"] is None  # the test split holds one activity: no negative samples
    assert activity["null_reasons"]["auroc_macro_ovr"] == "no class has both a positive and a negative sample in y_true"
    pixels_true = np.concatenate([np.asarray(Image.open(dataset / sample.mask)).ravel() for sample in samples])
    pixels_predicted = np.concatenate([np.asarray(Image.open(submission / "masks" / f"{sample.sample_id}.png")).ravel() for sample in samples])
    present = sorted(set(pixels_true.tolist()) | set(pixels_predicted.tolist()))
    iou = jaccard_score(pixels_true, pixels_predicted, labels=present, average=None)
    assert results["segmentation"]["miou"] == pytest.approx(iou.mean())
    assert results["segmentation"]["pixel_accuracy"] == pytest.approx(accuracy_score(pixels_true, pixels_predicted))
    assert [len(results[task]["per_class"]) for task in ("activity", "segmentation")] == [13, 12]


def test_one_task_only(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    folder = write_submission(tmp_path / "sub", card, "test")
    shutil.rmtree(folder / "masks")
    results = mtlbench.evaluate(folder, card, "test", bootstrap=0)
    assert results["submission"]["tasks_scored"] == ["activity"]
    assert results["segmentation"]["miou"] is None
    assert results["segmentation"]["null_reasons"]["miou"] == "task not in the submission"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: Image.fromarray(np.zeros((8, 11), np.uint8)).save(path), "mask is 11x8, ground truth is 10x8"),
        (lambda path: Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(path), "single-channel 8-bit"),
        (lambda path: Image.fromarray(np.full((8, 10), 12, np.uint8)).save(path), "predicted class value 12 is out of range 0..11"),
        (lambda path: Image.fromarray(np.full((8, 10), 255, np.uint8)).save(path), "predicted class value 255"),
        (lambda path: path.write_bytes(path.read_bytes()[:30]), "corrupt or unreadable PNG"),
    ],
)
def test_bad_masks_are_refused_naming_the_file(dataset: Path, tmp_path: Path, damage, message):
    card = read_dataset(dataset)
    folder = write_submission(tmp_path / "sub", card, "test")
    damage(folder / "masks" / "seq01_frame001.png")
    with pytest.raises(InputError, match=message) as caught:
        mtlbench.evaluate(folder, card, "test", bootstrap=0)
    assert caught.value.where.endswith("masks/seq01_frame001.png")


def test_cli_evaluate_writes_results_and_plots_and_reads_zips(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    folder = write_submission(tmp_path / "sub", card, "test")
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, path.relative_to(folder).as_posix())
    out, plots = tmp_path / "results.json", tmp_path / "plots"
    command = [sys.executable, "-m", "mtlbench", "evaluate", archive, "--dataset", dataset, "--out", out, "--plots", plots, "--bootstrap", "200"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "mIoU (all classes)" in result.stdout and "Per activity" in result.stdout
    results = json.loads(out.read_text())
    assert results["segmentation"]["miou"] == 1.0
    assert sorted(p.name for p in plots.iterdir()) == ["activity_confusion.png", "segmentation_activity_miou.png", "segmentation_class_iou.png"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({
        "dataset": {"name": card.name, "fingerprint": card.fingerprint, "split": "test"},
        "activity": {"accuracy": 0.5, "macro_f1": 0.5}, "segmentation": {"miou": 0.5, "pixel_accuracy": 0.5},
    }))
    with_baseline = subprocess.run(command[:-2] + ["--bootstrap", "0", "--baseline", baseline], capture_output=True, text=True)
    assert with_baseline.returncode == 0, with_baseline.stderr
    assert json.loads(out.read_text())["multitask"]["delta_m"] == pytest.approx(100.0)


def test_cli_format_and_missing_dataset(dataset: Path):
    shown = subprocess.run([sys.executable, "-m", "mtlbench", "evaluate", "--format", "--dataset", dataset], capture_output=True, text=True)
    assert shown.returncode == 0 and "score_Ultrasound_Sensing" in shown.stdout
    missing = subprocess.run([sys.executable, "-m", "mtlbench", "evaluate", "somewhere"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: --dataset: is required (except with --format)"


def test_allow_missing_scores_missing_predictions_as_wrong(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    folder = write_submission(tmp_path / "sub", card, "test")
    (folder / "masks" / "seq01_frame002.png").unlink()
    rows = (folder / "activities.csv").read_text().splitlines()
    (folder / "activities.csv").write_text("\n".join(row for row in rows if not row.startswith("seq01_frame000")) + "\n")
    with pytest.raises(InputError, match="1 of 3 predictions missing: seq01_frame000"):
        mtlbench.evaluate(folder, card, "test", bootstrap=0)
    results = mtlbench.evaluate(folder, card, "test", bootstrap=0, allow_missing=True)
    assert results["activity"]["accuracy"] == pytest.approx(2 / 3)
    # the frame without a mask has no pixel right: 80 of 240 pixels are missed
    assert results["segmentation"]["pixel_accuracy"] == pytest.approx(160 / 240)
    assert results["segmentation"]["miou"] == pytest.approx(2 / 3)  # each class: TP 2/3 of its pixels, no FP
    assert results["submission"]["missing"] == {
        "activity": {"count": 1, "examples": ["seq01_frame000"]},
        "segmentation": {"count": 1, "examples": ["seq01_frame002"]},
    }


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_without_decoding(dataset: Path, tmp_path: Path):
    card = read_dataset(dataset)
    folder = write_submission(tmp_path / "sub", card, "test")
    (folder / "masks" / "seq01_frame001.png").write_bytes(_png_header_only(50_000, 50_000))
    with pytest.raises(InputError) as caught:
        mtlbench.evaluate(folder, card, "test", bootstrap=0)
    assert caught.value.where.endswith("masks/seq01_frame001.png")
    assert "50000x50000" in caught.value.problem or "DecompressionBomb" in caught.value.problem
