"""MMoE: Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning
with Multi-gate Mixture-of-Experts", KDD 2018.

Structure: `model.experts.shared` experts that every task reads and one softmax gate per task;
task t's head reads sum_i gate_t(x)_i * expert_i(x) (experts.py holds the machinery).

- resnet50, as LibMTL's MMoE: each expert is a whole dilated ResNet-50 (built by the encoder
  factory, so each loads model.encoder.weights); each gate is a linear layer on the flattened
  input image (3 x H x W at data.input_size) and a softmax. A frozen resnet50 is refused (the
  experts would be one frozen network repeated).
- ViT encoders (dinov2, endovit), adapted: the encoder runs once, shared by every task, with its
  adapters and SMA; the experts are residual per-token MLPs over its (B, D, h, w) map (hidden
  width model.experts.hidden, default D) and the gates read its mean token (linear + softmax).
  feature_layout release_view is refused (its channels are token positions).
- TESLA task-specific adapters are refused: the gates already give each task its own path.

Differences from LibMTL: the input is resized to data.input_size first (as hps); gates compute in
float32 outside autocast; the ViT form is ours (LibMTL copies the whole encoder per expert).

shared_parameters(): the experts' parameters (ViT: and the shared encoder's trainable ones:
adapters, SMA, or all of it when not frozen); the gates and heads are task-specific.
"""

from __future__ import annotations

from baselines.config import ModelConfig
from baselines.models.experts import MixtureOfExperts, build_one_level, check_experts, softmax_gate
from baselines.models.registries import register_architecture


def _check(config: ModelConfig) -> None:
    check_experts(config, "mmoe")


@register_architecture(
    "mmoe", "multi-gate mixture of experts: shared experts, one softmax gate per task (resnet50: encoder experts; ViT: token experts)", check=_check
)
def build_mmoe(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> MixtureOfExperts:
    return build_one_level(config, tuple(tasks), num_classes, num_activities, input_size, config.experts.shared, 0, softmax_gate)
