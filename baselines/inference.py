"""Running a model over a split: per-sample activity probabilities and masks at the original size.

Validation metrics and the test predictions both come from `predict`, so model selection sees
exactly what the evaluator will score.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from baselines.config import DataConfig
from baselines.data import SplitView, evaluation_loader
from baselines.family import Prediction
from mtlbench.dataset.files import read_mask
from mtlbench.metrics.activity import activity_metrics
from mtlbench.metrics.confusion import frame_confusion
from mtlbench.metrics.segmentation import segmentation_metrics


@torch.no_grad()
def predict(
    model: torch.nn.Module, view: SplitView, config: DataConfig, device: torch.device, autocast, align_corners: bool = False
) -> Iterator[Prediction]:
    """Segmentation logits (at the loaded size) are upsampled bilinearly to each frame's original
    size with `align_corners` (the model's setting), then argmaxed."""
    was_training = model.training
    model.eval()
    try:
        for batch in evaluation_loader(view, config, device):
            with autocast():
                outputs = model(batch["image"].to(device))
            probabilities = F.softmax(outputs["activity"].double(), dim=-1).cpu().numpy() if "activity" in outputs else None
            for row, index in enumerate(batch["index"].tolist()):
                sample = view.source.samples[index]
                mask = None
                if "segmentation" in outputs:
                    logits = F.interpolate(
                        outputs["segmentation"][row : row + 1].float(), size=(sample.height, sample.width),
                        mode="bilinear", align_corners=align_corners,
                    )
                    mask = logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
                # activity: (A,) float64 probabilities; segmentation: (H, W) uint8 class ids at the original size
                values = {"activity": None if probabilities is None else probabilities[row], "segmentation": mask}
                yield Prediction(sample, {task: value for task, value in values.items() if value is not None})
    finally:
        model.train(was_training)


def validation_metrics(predictions: Iterator[Prediction], root, class_names, activity_names) -> dict[str, float | None]:
    """The selection metrics (baselines.selection.SELECTION_METRICS keys) of the predictions of one split."""
    truth, predicted, confusions = [], [], []
    for prediction in predictions:
        truth.append(prediction.sample.activity_id)
        if "activity" in prediction.values:
            predicted.append(int(prediction.values["activity"].argmax()))
        if "segmentation" in prediction.values:
            ground_truth = read_mask(root, prediction.sample)
            confusions.append(frame_confusion(ground_truth, prediction.values["segmentation"], len(class_names)))
    values: dict[str, float | None] = {}
    if predicted:
        activity = activity_metrics(np.array(truth), np.array(predicted), activity_names)
        values.update({f"activity.{key}": activity[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")})
    if confusions:
        segmentation = segmentation_metrics(np.stack(confusions), class_names)
        values.update({f"segmentation.{key}": segmentation[key] for key in ("miou", "miou_foreground", "mdice", "pixel_accuracy")})
    return values
