"""Semantic segmentation metrics from per-frame confusion matrices (docs/metrics.md).

Every score is built from per-frame statistics that can be summed over any set of frames
(`frame_statistics`) and one function that turns summed statistics into the headline numbers
(`headline_from_sums`), so point estimates and the sequence bootstrap share one code path.

Confusions have shape (K, K + 1) per frame (mtlbench.metrics.confusion): rows are ground
truth, columns predictions, and the last column counts pixels without any prediction. Such a
pixel is wrong: it adds to FN of its true class and to no class's FP. Ground-truth pixels
equal to 255 are never counted.

Headline numbers (all in [0, 1]; None when undefined, never NaN):
  miou             dataset-level IoU_c = TP / (TP + FP + FN) over the split, averaged over
                   the classes whose union is > 0 (absent classes are excluded), background
                   included
  miou_foreground  the same without the background class
  mdice            dataset-level Dice_c = 2 TP / (2 TP + FP + FN), same class set as miou
  pixel_accuracy   trace / all evaluated pixels (missing ones included)
  challenge_iou    EndoVis challenge IoU: per frame, mean IoU over the foreground classes in
                   that frame's ground truth; frames without foreground ground truth skipped;
                   mean over frames
  isi_iou          per frame, mean IoU over the foreground classes in ground truth or
                   prediction; frames where both have none skipped; mean over frames
  mciou            per foreground class, mean per-frame IoU over the frames where the class
                   is in ground truth or prediction; mean over the classes that occur

Per ground-truth activity (with frame activities): the dataset-level miou of its frames, and
the mean over its frames of the frame's foreground IoU (ground truth and prediction reduced to
foreground vs background); per_activity_miou_std and per_activity_foreground_iou_std are the
population std of each across activities. The second is what the EndoARSS release's std.py
reports (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlbench.metrics.confusion import class_counts, confusions_from_masks, divide_or_zero
from mtlbench.taxonomies import IGNORE_INDEX

_HEADLINE_NULL_REASONS = {
    "miou": "no class occurs in ground truth or prediction (no evaluated pixels)",
    "miou_foreground": "no foreground class occurs in ground truth or prediction",
    "mdice": "no class occurs in ground truth or prediction (no evaluated pixels)",
    "pixel_accuracy": "no evaluated pixels",
    "challenge_iou": "no frame has foreground classes in its ground truth",
    "isi_iou": "no frame has foreground classes in ground truth or prediction",
    "mciou": "no foreground class occurs in any frame's ground truth or prediction",
}


def _counts_and_union(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`class_counts` plus the union TP + FP + FN = ground truth + predicted - TP."""
    true_positive, ground_truth, predicted = class_counts(confusion)
    return true_positive, ground_truth, predicted, ground_truth + predicted - true_positive


def _foreground_mask(num_classes: int, background: int | None) -> np.ndarray:
    mask = np.ones(num_classes, dtype=bool)
    if background is not None:
        mask[background] = False
    return mask


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


def frame_statistics(frame_confusions: np.ndarray, background: int | None = 0) -> dict[str, np.ndarray]:
    """Per-frame statistics, each with a leading frame axis; summing them over frames is valid.

    confusion (F, K, K+1); challenge_sum / challenge_frames (F,): the frame's challenge IoU and
    whether it counts; isi_sum / isi_frames (F,) likewise; mciou_sum / mciou_frames (F, K): the
    frame's IoU of each foreground class and whether that class occurs in the frame.
    """
    confusions = np.asarray(frame_confusions, dtype=np.int64)
    true_positive, ground_truth, _, union = _counts_and_union(confusions)
    iou = divide_or_zero(true_positive, union)
    foreground = _foreground_mask(confusions.shape[1], background)
    in_ground_truth = (ground_truth > 0) & foreground
    in_either = (union > 0) & foreground
    return {
        "confusion": confusions,
        "challenge_sum": divide_or_zero((iou * in_ground_truth).sum(axis=1), in_ground_truth.sum(axis=1)),
        "challenge_frames": in_ground_truth.any(axis=1).astype(np.int64),
        "isi_sum": divide_or_zero((iou * in_either).sum(axis=1), in_either.sum(axis=1)),
        "isi_frames": in_either.any(axis=1).astype(np.int64),
        "mciou_sum": iou * in_either,
        "mciou_frames": in_either.astype(np.int64),
    }


def frame_foreground_iou(frame_confusions: np.ndarray, background: int | None = 0) -> np.ndarray:
    """(F,) IoU of each frame's binary masks 'any foreground class' of ground truth and prediction.

    A frame with no foreground in either scores 1 and a pixel without prediction is wrong (in
    the union, never in the intersection), as in the EndoARSS release's std.py, which scores a
    frame 1 when both masks are empty and 0 when its prediction is missing.
    """
    confusions = np.asarray(frame_confusions, dtype=np.int64)
    k = confusions.shape[1]
    foreground = _foreground_mask(k, background)
    predicted = confusions[:, :, :k]
    both_foreground = predicted[:, foreground][:, :, foreground].sum(axis=(1, 2))
    both_background = predicted[:, ~foreground][:, :, ~foreground].sum(axis=(1, 2))
    union = confusions.sum(axis=(1, 2)) - both_background
    return np.divide(both_foreground, union, out=np.ones(len(union)), where=union > 0)


def _mean_of_ratios(sums: np.ndarray, counts: np.ndarray) -> float | None:
    """Mean over the entries with count > 0 of sum / count."""
    return _masked_mean(divide_or_zero(sums, counts), counts > 0)


def confusion_headline(confusion: np.ndarray, background: int | None = 0) -> dict[str, float | None]:
    """miou, miou_foreground, mdice and pixel_accuracy of one (K, K + 1) confusion."""
    true_positive, _, _, union = _counts_and_union(confusion)
    occurs = union > 0
    iou = divide_or_zero(true_positive, union)
    total = confusion.sum()
    return {
        "miou": _masked_mean(iou, occurs),
        "miou_foreground": _masked_mean(iou, occurs & _foreground_mask(len(union), background)),
        "mdice": _masked_mean(divide_or_zero(2 * true_positive, union + true_positive), occurs),
        "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else None,
    }


def headline_from_sums(sums: dict[str, np.ndarray], background: int | None = 0) -> dict[str, float | None]:
    """The headline numbers from `frame_statistics` summed over a set of frames (frame axis gone)."""
    return {
        **confusion_headline(sums["confusion"], background),
        "challenge_iou": _mean_of_ratios(sums["challenge_sum"], sums["challenge_frames"]),
        "isi_iou": _mean_of_ratios(sums["isi_sum"], sums["isi_frames"]),
        "mciou": _mean_of_ratios(sums["mciou_sum"], sums["mciou_frames"]),
    }


def headline_null_reasons(headline: dict[str, float | None]) -> dict[str, str]:
    return {key: _HEADLINE_NULL_REASONS[key] for key, value in headline.items() if value is None}


def _per_class(confusion: np.ndarray, class_names: Sequence[str], null_reasons: dict[str, str]) -> list[dict]:
    true_positive, ground_truth, predicted, union = _counts_and_union(confusion)
    rows = []
    for class_id, name in enumerate(class_names):
        tp, gt, pred, uni = (int(a[class_id]) for a in (true_positive, ground_truth, predicted, union))
        if uni == 0:
            null_reasons[f"per_class.{name}"] = "class absent from ground truth and prediction: IoU and Dice undefined"
        rows.append(
            {
                "id": class_id,
                "name": name,
                "iou": tp / uni if uni else None,
                "dice": 2 * tp / (uni + tp) if uni else None,
                "tp": tp,
                "fp": pred - tp,
                "fn": gt - tp,
                "gt_pixels": gt,
                "pred_pixels": pred,
            }
        )
    return rows


def _per_activity(
    confusions: np.ndarray,
    frame_activities: np.ndarray,
    activity_names: Sequence[str],
    background: int | None,
    null_reasons: dict[str, str],
) -> list[dict]:
    foreground_iou = frame_foreground_iou(confusions, background)
    rows = []
    for activity_id, name in enumerate(activity_names):
        selected = frame_activities == activity_id
        miou = confusion_headline(confusions[selected].sum(axis=0), background)["miou"]
        if miou is None:
            null_reasons[f"per_activity.{name}"] = (
                "no frames with this activity" if not selected.any() else _HEADLINE_NULL_REASONS["miou"]
            )
        rows.append({
            "id": activity_id,
            "name": name,
            "frames": int(selected.sum()),
            "miou": miou,
            "foreground_iou": float(foreground_iou[selected].mean()) if selected.any() else None,
        })
    return rows


def _population_std(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.std(defined)) if len(defined) >= 2 else None


def _release_foreground_iou_std(per_activity: list[dict]) -> float | None:
    """np.std over every activity of its mean foreground IoU, an activity without frames counting
    0: the EndoARSS release's std.py, which takes the mean IoU of an empty activity folder as 0."""
    if len(per_activity) < 2 or not any(row["frames"] for row in per_activity):
        return None
    return float(np.std([0.0 if row["foreground_iou"] is None else row["foreground_iou"] for row in per_activity]))


def definitions(background: int | None) -> dict[str, str]:
    return {
        "absent_classes": "a class with union 0 (absent from ground truth and prediction) is excluded from means",
        "background": (
            "no background class: every class is foreground"
            if background is None
            else f"background is class {background}; included in miou, mdice and pixel_accuracy, "
            "excluded from miou_foreground, challenge_iou, isi_iou and mciou"
        ),
        "foreground": "every class" if background is None else f"every class except class {background}",
        "ignore_index": f"ground-truth pixels equal to {IGNORE_INDEX} are excluded before counting",
        "missing_column": "the last confusion column counts pixels without prediction: "
        "wrong, added to the true class's FN and to no class's FP",
        "per_activity": "dataset-level miou over the frames of each ground-truth activity; "
        "per_activity_miou_std is their population std (ddof=0)",
        "foreground_iou": "per frame, the IoU of the binary masks 'any foreground class' of ground truth and "
        "prediction (1 when both are empty; a pixel without prediction is wrong); per_activity foreground_iou is "
        "its mean over the activity's frames; per_activity_foreground_iou_std is the population std (ddof=0) over "
        "all activities, one without frames counting 0: the EndoARSS release's std.py",
    }


def _check_inputs(confusions: np.ndarray, class_names, frame_activities, activity_names, background) -> None:
    if confusions.ndim != 3 or confusions.shape[2] != confusions.shape[1] + 1:
        raise ValueError(f"frame confusions must have shape (F, K, K + 1), got {confusions.shape}")
    if len(class_names) != confusions.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {confusions.shape[1]} classes")
    if background is not None and not 0 <= background < confusions.shape[1]:
        raise ValueError(f"background class {background} is out of range 0..{confusions.shape[1] - 1}")
    if frame_activities is None:
        return
    if activity_names is None:
        raise ValueError("frame_activities needs activity_names")
    if frame_activities.shape != (confusions.shape[0],):
        raise ValueError(f"frame_activities must have shape ({confusions.shape[0]},), got {frame_activities.shape}")
    if frame_activities.size and not (0 <= frame_activities.min() and frame_activities.max() < len(activity_names)):
        raise ValueError(f"frame activities outside 0..{len(activity_names) - 1}")


def segmentation_metrics(
    frame_confusions: np.ndarray,
    class_names: Sequence[str],
    frame_activities: np.ndarray | None = None,
    activity_names: Sequence[str] | None = None,
    background: int | None = 0,
) -> dict:
    """All segmentation metrics of a split from its (F, K, K + 1) per-frame confusions."""
    confusions = np.asarray(frame_confusions, dtype=np.int64)
    activities = None if frame_activities is None else np.asarray(frame_activities)
    _check_inputs(confusions, class_names, activities, activity_names, background)
    statistics = frame_statistics(confusions, background)
    sums = {key: values.sum(axis=0) for key, values in statistics.items()}
    headline = headline_from_sums(sums, background)
    null_reasons = headline_null_reasons(headline)
    per_class = _per_class(sums["confusion"], class_names, null_reasons)
    per_activity = miou_std = foreground_iou_std = None
    if activities is not None:
        per_activity = _per_activity(confusions, activities, activity_names, background, null_reasons)
        miou_std = _population_std([row["miou"] for row in per_activity])
        if miou_std is None:
            null_reasons["per_activity_miou_std"] = "fewer than 2 activities with a defined miou"
        foreground_iou_std = _release_foreground_iou_std(per_activity)
        if foreground_iou_std is None:
            null_reasons["per_activity_foreground_iou_std"] = "fewer than 2 activities, or no frames"
    return {
        **headline,
        "per_class": per_class,
        "per_activity": per_activity,
        "per_activity_miou_std": miou_std,
        "per_activity_foreground_iou_std": foreground_iou_std,
        "confusion_matrix": sums["confusion"].tolist(),
        "null_reasons": null_reasons,
        "definitions": definitions(background),
    }


def segmentation_metrics_from_masks(
    gt_masks,
    pred_masks,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    frame_activities: np.ndarray | None = None,
    activity_names: Sequence[str] | None = None,
    background: int | None = 0,
) -> dict:
    """`segmentation_metrics` of paired (H, W) uint8 masks; a `None` prediction counts as missing."""
    names = [str(i) for i in range(num_classes)] if class_names is None else class_names
    confusions = confusions_from_masks(gt_masks, pred_masks, num_classes)
    return segmentation_metrics(confusions, names, frame_activities, activity_names, background)
