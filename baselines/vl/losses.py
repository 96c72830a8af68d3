"""Losses of the vision-language runners.

Multi-label (loss.multilabel), chosen because landmark labels are skewed (the reference paper's
open problem):
  bce           plain binary cross-entropy, mean over labels and samples
  weighted_bce  binary cross-entropy with each label's positives weighted by negatives/positives
                of the training split (torch's pos_weight), capped at 100
  asymmetric    the asymmetric loss of Ridnik et al., ICCV 2021: -(1-p)^g+ log p on positives,
                -p_m^g- log(1-p_m) on negatives with p_m = max(p - clip, 0); summed over labels,
                averaged over samples (the paper's defaults g+ = 0, g- = 4, clip = 0.05)
Text: token cross-entropy with label smoothing, padding (baselines.vl.data.IGNORE_LABEL) ignored. Classification: cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MULTILABEL_LOSSES = ("asymmetric", "weighted_bce", "bce")
MAX_POSITIVE_WEIGHT = 100.0


def positive_weights(targets: Tensor) -> Tensor:
    """negatives / positives per label of a (N, L) 0/1 training matrix; 1 where a label never occurs."""
    positives = targets.sum(dim=0)
    negatives = len(targets) - positives
    weights = torch.where(positives > 0, negatives / positives.clamp(min=1), torch.ones_like(positives))
    return weights.clamp(max=MAX_POSITIVE_WEIGHT)


def asymmetric_loss(logits: Tensor, targets: Tensor, gamma_positive: float, gamma_negative: float, clip: float) -> Tensor:
    probabilities = torch.sigmoid(logits)
    shifted = (probabilities - clip).clamp(min=0) if clip > 0 else probabilities
    eps = 1e-8
    positive = targets * (1 - probabilities).pow(gamma_positive) * torch.log(probabilities.clamp(min=eps))
    negative = (1 - targets) * shifted.pow(gamma_negative) * torch.log((1 - shifted).clamp(min=eps))
    return -(positive + negative).sum(dim=1).mean()


def multilabel_loss(kind: str, logits: Tensor, targets: Tensor, pos_weight: Tensor | None, gamma_positive: float, gamma_negative: float, clip: float) -> Tensor:
    logits, targets = logits.float(), targets.float()
    if kind == "asymmetric":
        return asymmetric_loss(logits, targets, gamma_positive, gamma_negative, clip)
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight if kind == "weighted_bce" else None)


def token_loss(logits: Tensor, labels: Tensor, ignore: int, label_smoothing: float) -> Tensor:
    """Mean over the label positions that are not `ignore` (padding)."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=ignore, label_smoothing=label_smoothing)
