"""CGC (Customized Gate Control): Tang, Liu, Zhao and Gong, "Progressive Layered Extraction (PLE):
A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020. CGC is
the paper's single-level form of PLE (ple.py stacks levels).

Structure: `model.experts.shared` experts every task reads, `model.experts.per_task` experts of
each task's own, and one softmax gate per task over its own and the shared experts; task t's head
reads sum_i gate_t(x)_i * expert_i(x) over those (experts.py holds the machinery).

- resnet50, as LibMTL's CGC: each expert (shared or task-specific) is a whole dilated ResNet-50
  (built by the encoder factory, so each loads model.encoder.weights); each gate is a linear
  layer on the flattened input image and a softmax. A frozen resnet50 is refused.
- ViT encoders (dinov2, endovit), adapted: the encoder runs once, shared by every task; the
  experts are residual per-token MLPs over its feature map (hidden width model.experts.hidden,
  default the encoder width) and the gates read its mean token. feature_layout release_view is
  refused.
- TESLA task-specific adapters are refused (the task-specific experts and gates already give
  each task its own path).

Differences from LibMTL: none in the structure (shared experts run once, each task's own experts
and gate per task); the input is resized to data.input_size first, the gates compute in float32,
and the ViT form is ours.

shared_parameters(): the shared experts' parameters (ViT: and the shared encoder's trainable
ones); task-specific experts, gates and heads are task-specific.
"""

from __future__ import annotations

from baselines.config import ModelConfig
from baselines.models.experts import MixtureOfExperts, build_one_level, check_experts, softmax_gate
from baselines.models.registries import register_architecture


def _check(config: ModelConfig) -> None:
    check_experts(config, "cgc")


@register_architecture(
    "cgc", "customized gate control (PLE's single level): shared and task-specific experts, one softmax gate per task", check=_check
)
def build_cgc(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> MixtureOfExperts:
    experts = config.experts
    return build_one_level(config, tuple(tasks), num_classes, num_activities, input_size, experts.shared, experts.per_task, softmax_gate)
