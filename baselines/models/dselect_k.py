"""DSelect-k: Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong and Chi, "DSelect-k:
Differentiable Selection in the Mixture of Experts with Applications to Multi-Task Learning",
NeurIPS 2021.

Structure: MMoE (mmoe.py) with DSelect-k gates: `model.experts.shared` experts, and per task a
gate of k = model.experts.selected single-expert selectors. Selector j maps the gate input to
ceil(log2 E) logits, puts each through the smooth step (width gamma = model.experts.gamma) and
weights expert i by the product over bits of S(z) where i's binary code has a 1, 1 - S(z) where
it has a 0; a softmax over k more logits mixes the selectors (experts.DSelectKGate). Gates are
example-conditioned (LibMTL's and the paper's MTL form), initialised as the official code
(z uniform in +-gamma/100, w in +-0.05).

- resnet50, as LibMTL's DSelect_k: each expert is a whole dilated ResNet-50; the gates read the
  flattened input image. A frozen resnet50 is refused.
- ViT encoders (dinov2, endovit), adapted: the encoder runs once, shared; the experts are
  residual per-token MLPs over its feature map (hidden width model.experts.hidden) and the
  gates read its mean token. feature_layout release_view and TESLA adapters are refused.

Regulariser: LibMTL always adds 1e-6 x the selectors' entropy (summed over samples and
selectors) plus, when E is not a power of 2, sum 1 / (selector weight on the reachable experts),
as the official code (whose entropy term is optional, 1e-6 when on). LibMTL calls backward() on
it inside forward, for the last task's gate only. Here every gate adds the regulariser's gradient
to its selector outputs' gradient through a hook in training (experts.ENTROPY_WEIGHT = 1e-6), so
each task's gate is regularised, and the trainer's zero_grad after the forward does not drop it.

Other differences from LibMTL: LibMTL's smooth step ignores its kgamma (it always uses 1; kgamma
only scales the initialisation): here gamma is used in both. Input resized to data.input_size
first; gates in float32.

shared_parameters(): the experts' parameters (ViT: and the shared encoder's trainable ones); the
gates and heads are task-specific.
"""

from __future__ import annotations

from baselines.config import ModelConfig
from baselines.models.experts import MixtureOfExperts, build_one_level, check_experts, dselect_k_gate
from baselines.models.registries import register_architecture


def _check(config: ModelConfig) -> None:
    check_experts(config, "dselect_k")


@register_architecture(
    "dselect_k", "DSelect-k: shared experts, per-task differentiable sparse gates selecting k experts (smooth-step binary codes)", check=_check
)
def build_dselect_k(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> MixtureOfExperts:
    experts = config.experts
    gate = dselect_k_gate(experts.selected, experts.gamma)
    return build_one_level(config, tuple(tasks), num_classes, num_activities, input_size, experts.shared, 0, gate)
