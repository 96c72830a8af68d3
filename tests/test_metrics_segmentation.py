"""Segmentation metrics: hand-computed confusion cases and scikit-learn on random masks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from mtlbench.metrics.segmentation import (
    frame_statistics,
    headline_from_sums,
    segmentation_metrics,
    segmentation_metrics_from_masks,
)

NAMES = ["background", "tool", "tissue", "never"]

# Rows ground truth 0..3, columns predictions 0..3 then "missing". Class 3 never occurs.
FRAME_1 = [[5, 1, 0, 0, 0], [1, 3, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
# class 2 ("tissue") is predicted here but is in no frame's ground truth
FRAME_2 = [[4, 0, 2, 0, 0], [0, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
# only background in ground truth and prediction
FRAME_3 = [[6, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]


@pytest.fixture
def three_frames() -> dict:
    return segmentation_metrics(np.array([FRAME_1, FRAME_2, FRAME_3]), NAMES, np.array([0, 1, 0]), ["a", "b", "c"])


def test_dataset_level_scores_by_hand(three_frames):
    # totals: gt0 -> [15, 1, 2, 0], gt1 -> [1, 5, 0, 0]; TP = (15, 5, 0, 0)
    # gt pixels (18, 6, 0, 0), predicted (16, 6, 2, 0), union (19, 7, 2, 0)
    m = three_frames
    assert m["miou"] == pytest.approx((15 / 19 + 5 / 7 + 0) / 3)  # class 3 (union 0) left out
    assert m["miou_foreground"] == pytest.approx((5 / 7 + 0) / 2)
    # Dice = 2 TP / (union + TP): 30/34, 10/12, 0
    assert m["mdice"] == pytest.approx((15 / 17 + 5 / 6 + 0) / 3)
    assert m["pixel_accuracy"] == pytest.approx(20 / 24)
    assert m["confusion_matrix"] == [[15, 1, 2, 0, 0], [1, 5, 0, 0, 0], [0] * 5, [0] * 5]


def test_frame_level_scores_by_hand(three_frames):
    # frame 1: tool IoU = 3 / (4 + 4 - 3) = 0.6; tissue neither in GT nor prediction
    # frame 2: tool IoU = 2 / 2 = 1; tissue predicted only: IoU 0 (in GT u pred, not in GT)
    # frame 3: no foreground anywhere: skipped by all three
    m = three_frames
    assert m["challenge_iou"] == pytest.approx((0.6 + 1.0) / 2)
    assert m["isi_iou"] == pytest.approx((0.6 + (1.0 + 0.0) / 2) / 2)
    # tool over frames 1, 2: 0.8; tissue over frame 2: 0
    assert m["mciou"] == pytest.approx((0.8 + 0.0) / 2)


def test_per_class_table_and_absent_class(three_frames):
    rows = three_frames["per_class"]
    assert [r["name"] for r in rows] == NAMES
    assert rows[1] == {
        "id": 1,
        "name": "tool",
        "iou": pytest.approx(5 / 7),
        "dice": pytest.approx(5 / 6),
        "tp": 5,
        "fp": 1,
        "fn": 1,
        "gt_pixels": 6,
        "pred_pixels": 6,
    }
    assert rows[2]["iou"] == 0 and rows[2]["fp"] == 2 and rows[2]["gt_pixels"] == 0
    assert rows[3]["iou"] is None and rows[3]["dice"] is None
    assert set(three_frames["null_reasons"]) == {"per_class.never", "per_activity.c"}


def test_per_activity_by_hand(three_frames):
    # activity a = frames 1 + 3: gt0 -> [11, 1], gt1 -> [1, 3]; IoU 11/13, 3/5 (tissue absent)
    # activity b = frame 2: IoU 4/6, 2/2, 0/2
    a, b = (11 / 13 + 3 / 5) / 2, (4 / 6 + 1 + 0) / 3
    rows = three_frames["per_activity"]
    assert [(r["name"], r["frames"]) for r in rows] == [("a", 2), ("b", 1), ("c", 0)]
    assert rows[0]["miou"] == pytest.approx(a) and rows[1]["miou"] == pytest.approx(b)
    assert rows[2]["miou"] is None
    assert three_frames["per_activity_miou_std"] == pytest.approx(abs(a - b) / 2)


def test_background_frame_with_false_positive_counts_for_isi_not_challenge():
    names = ["background", "tool"]
    tool_frame = [[2, 0, 0], [1, 1, 0]]  # tool IoU 1/2
    false_alarm = [[2, 2, 0], [0, 0, 0]]  # no tool in GT, 2 predicted: IoU 0
    m = segmentation_metrics(np.array([tool_frame, false_alarm]), names)
    assert m["challenge_iou"] == pytest.approx(0.5)
    assert m["isi_iou"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["mciou"] == pytest.approx(0.25)


def test_missing_prediction_column_counts_as_wrong():
    names = ["background", "tool"]
    missing = [[0, 0, 2], [0, 0, 2]]
    predicted = [[3, 1, 0], [0, 2, 0]]
    m = segmentation_metrics(np.array([missing, predicted]), names)
    # totals gt0 -> [3, 1, 2], gt1 -> [0, 2, 2]: TP (3, 2), gt (6, 4), predicted (3, 3)
    assert m["pixel_accuracy"] == pytest.approx(5 / 10)
    assert [r["iou"] for r in m["per_class"]] == pytest.approx([3 / 6, 2 / 5])
    assert [(r["fp"], r["fn"]) for r in m["per_class"]] == [(0, 3), (1, 2)]
    # frame 1 tool IoU 0 (all missing), frame 2 tool IoU 2 / 3
    assert m["challenge_iou"] == pytest.approx(1 / 3)

    gt = [np.array([[0, 0], [1, 1]], np.uint8), np.array([[0, 0, 0], [0, 1, 1]], np.uint8)]
    pred = [None, np.array([[0, 0, 0], [1, 1, 1]], np.uint8)]
    assert segmentation_metrics_from_masks(gt, pred, 2, names) == m


def test_ignored_pixels_are_not_counted():
    gt = np.array([[0, 1, 255], [1, 1, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [0, 1, 0]], np.uint8)
    m = segmentation_metrics_from_masks([gt], [pred], 2)
    # evaluated: (0 -> 0), (1 -> 1), (1 -> 0), (1 -> 1)
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 2, 0]]
    assert m["pixel_accuracy"] == pytest.approx(3 / 4)
    # background: TP 1, union 1 + 2 - 1 = 2; tool: TP 2, union 3 + 2 - 2 = 3
    assert m["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert [r["name"] for r in m["per_class"]] == ["0", "1"]


def test_one_frame_single_class_dataset():
    only_background = np.array([[[7, 0, 0], [0, 0, 0]]])
    m = segmentation_metrics(only_background, ["background", "tool"], np.array([0]), ["a"])
    assert m["miou"] == 1.0 and m["pixel_accuracy"] == 1.0 and m["mdice"] == 1.0
    for key in ("miou_foreground", "challenge_iou", "isi_iou", "mciou", "per_activity_miou_std"):
        assert m[key] is None and key in m["null_reasons"]
    # no foreground in either mask: foreground IoU 1, as in the EndoARSS release's std.py
    assert m["per_activity"] == [{"id": 0, "name": "a", "frames": 1, "miou": 1.0, "foreground_iou": 1.0}]
    assert m["per_activity_foreground_iou_std"] is None and "per_activity_foreground_iou_std" in m["null_reasons"]

    no_background = segmentation_metrics(only_background, ["tissue", "tool"], background=None)
    assert no_background["miou_foreground"] == 1.0 and no_background["challenge_iou"] == 1.0
    assert "no background class" in no_background["definitions"]["background"]


def test_no_frames_gives_none_not_nan():
    m = segmentation_metrics(np.zeros((0, 2, 3), np.int64), ["background", "tool"])
    assert all(m[key] is None for key in ("miou", "mdice", "pixel_accuracy", "challenge_iou"))
    assert m["per_activity"] is None and m["per_activity_miou_std"] is None


def test_summed_statistics_of_a_subset_give_its_hand_computed_metrics():
    frames = np.array([FRAME_1, FRAME_2, FRAME_3])
    statistics = frame_statistics(frames, background=0)
    subset = {key: values[:2].sum(axis=0) for key, values in statistics.items()}
    # frames 1 + 2: true positives (9, 5, 0, 0), unions (13, 7, 2, 0); class 3 absent from both
    assert headline_from_sums(subset, background=0) == pytest.approx({
        "miou": (9 / 13 + 5 / 7 + 0) / 3,
        "miou_foreground": (5 / 7 + 0) / 2,
        "mdice": (9 / 11 + 5 / 6 + 0) / 3,
        "pixel_accuracy": 14 / 18,
        "challenge_iou": 0.8,
        "isi_iou": 0.55,
        "mciou": 0.4,
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_scores_match_sklearn_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    k = 5
    gt = [rng.integers(0, k, (6, 7), dtype=np.uint8) for _ in range(3)]
    pred = [rng.integers(0, k, (6, 7), dtype=np.uint8) for _ in range(3)]
    for mask in gt:
        mask[rng.random(mask.shape) < 0.2] = 255
    m = segmentation_metrics_from_masks(gt, pred, k)

    keep = np.concatenate([g.ravel() for g in gt]) != 255
    y_true = np.concatenate([g.ravel() for g in gt])[keep]
    y_pred = np.concatenate([p.ravel() for p in pred])[keep]
    labels = list(range(k))
    assert [r["iou"] for r in m["per_class"]] == pytest.approx(
        jaccard_score(y_true, y_pred, labels=labels, average=None)
    )
    assert [r["dice"] for r in m["per_class"]] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average=None))
    assert m["pixel_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["miou"] == pytest.approx(jaccard_score(y_true, y_pred, labels=labels, average="macro"))


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="frame confusions must have shape"):
        segmentation_metrics(np.zeros((1, 2, 2), np.int64), ["a", "b"])
    with pytest.raises(ValueError, match="1 class names for 2 classes"):
        segmentation_metrics(np.zeros((1, 2, 3), np.int64), ["a"])
    with pytest.raises(ValueError, match="frame activities outside 0..0"):
        segmentation_metrics(np.zeros((1, 2, 3), np.int64), ["a", "b"], np.array([3]), ["x"])


# Classes 0 background, 1 tool, 2 tissue. Frames 1 and 2 have activity a, frames 3 and 4 activity b.
RELEASE_GT = [
    np.array([[0, 1], [2, 2]], np.uint8),
    np.array([[0, 0], [0, 0]], np.uint8),
    np.array([[1, 1], [0, 255]], np.uint8),
    np.array([[0, 1], [0, 0]], np.uint8),
]
RELEASE_PRED = [
    np.array([[1, 1], [2, 0]], np.uint8),
    np.array([[0, 0], [0, 0]], np.uint8),
    np.array([[2, 0], [0, 1]], np.uint8),
    None,  # missing
]


def test_release_foreground_iou_std_by_hand():
    """The EndoARSS release's std.py: per frame the IoU of 'any foreground' masks, mean per activity, np.std."""
    # frame 1: foreground gt {(0,1), (1,0), (1,1)}, predicted {(0,0), (0,1), (1,0)}: 2 / 4 = 0.5
    # frame 2: no foreground in either mask: 1
    # frame 3: (1,1) ignored; gt {(0,0), (0,1)}, predicted {(0,0)} (tissue for tool is still
    #          foreground): 1 / 2 = 0.5
    # frame 4: no prediction: 0
    # activity a: (0.5 + 1) / 2 = 0.75; activity b: (0.5 + 0) / 2 = 0.25; std of (0.75, 0.25) = 0.25
    m = segmentation_metrics_from_masks(RELEASE_GT, RELEASE_PRED, 3, frame_activities=np.array([0, 0, 1, 1]), activity_names=["a", "b"])
    assert [row["foreground_iou"] for row in m["per_activity"]] == pytest.approx([0.75, 0.25])
    assert m["per_activity_foreground_iou_std"] == pytest.approx(0.25)
    # a different quantity from the std of the per-activity mIoU
    assert m["per_activity_miou_std"] != pytest.approx(0.25)


def test_release_foreground_iou_std_counts_an_activity_without_frames_as_zero():
    m = segmentation_metrics_from_masks(
        RELEASE_GT, RELEASE_PRED, 3, frame_activities=np.array([0, 0, 1, 1]), activity_names=["a", "b", "c"]
    )
    assert m["per_activity"][2]["foreground_iou"] is None
    # std.py's mean IoU of an empty activity folder is 0: values (0.75, 0.25, 0), mean 1/3,
    # deviations (5, -1, -4) / 12, variance (25 + 1 + 16) / 144 / 3 = 7 / 72
    assert m["per_activity_foreground_iou_std"] == pytest.approx((7 / 72) ** 0.5)
    no_frames = segmentation_metrics(np.zeros((0, 3, 4), np.int64), ["0", "1", "2"], np.zeros(0, np.intp), ["a", "b"])
    assert no_frames["per_activity_foreground_iou_std"] is None
    assert "per_activity_foreground_iou_std" in no_frames["null_reasons"]


@pytest.mark.parametrize("seed", [0, 1])
def test_release_foreground_iou_std_matches_a_pixel_level_reading_of_std_py(seed):
    """Binary masks straight from the pixels (ignored pixels left out), as std.py forms them."""
    rng = np.random.default_rng(seed)
    gt = [rng.integers(0, 3, (5, 6), dtype=np.uint8) for _ in range(12)]
    pred = [rng.integers(0, 3, (5, 6), dtype=np.uint8) for _ in range(12)]
    gt[0][:] = 0
    pred[0][:] = 0  # no foreground anywhere: 1
    for mask in gt[1:]:
        mask[rng.random(mask.shape) < 0.1] = 255
    pred[5] = None
    activities = rng.integers(0, 3, size=12)

    def frame_iou(truth, predicted):
        if predicted is None:
            return 0.0
        evaluated = truth != 255
        truth_fg, predicted_fg = (truth != 0)[evaluated], (predicted != 0)[evaluated]
        union = np.logical_or(truth_fg, predicted_fg).sum()
        return np.logical_and(truth_fg, predicted_fg).sum() / union if union else 1.0

    ious = np.array([frame_iou(t, p) for t, p in zip(gt, pred)])
    means = [ious[activities == a].mean() if (activities == a).any() else 0.0 for a in range(4)]
    m = segmentation_metrics_from_masks(gt, pred, 3, frame_activities=activities, activity_names=["a", "b", "c", "d"])
    assert m["per_activity_foreground_iou_std"] == pytest.approx(np.std(means))
