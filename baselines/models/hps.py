"""Hard parameter sharing (the EndoARSS release's "MOLA"): one shared encoder, one head per task."""

from __future__ import annotations

import torch
from torch import nn

from baselines.config import ModelConfig
from baselines.models.heads import build_task_heads
from baselines.models.registries import ENCODERS, register_architecture
from baselines.models.representation import CutRepresentation
from baselines.models.multitask import MultiTaskModel

# Parameters of a task-specific encoder whose name holds this are owned by one task (TESLA's
# per-task B matrices), so they are not shared: weighting methods balance shared gradients only.
TASK_OWNED_PARAMETER = "lora_B"


class HardParameterSharing(MultiTaskModel):
    """forward(images) -> {task: logits}: activity (B, A), segmentation (B, K, H, W) at the size of `images`.

    Images of another size than the encoder's `input_size` are resized to it bilinearly first (the
    release loads 244 px frames and resizes them to 224 in the model, with align_corners=True).

    While `cut_representation` is set (by the trainer, for weighting methods that balance the
    representation's gradients), a training forward keeps the encoder's features in
    `representation` and gives each head its own leaf copy (representation.py).
    """

    cut_representation = False

    def __init__(self, encoder: nn.Module, heads: nn.ModuleDict, input_size: tuple[int, int], align_corners: bool = False):
        super().__init__()
        self.encoder = encoder
        self.attach_heads(heads, input_size, align_corners)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        size = images.shape[-2:]
        images = self.resize_input(images)
        if self.encoder.task_specific:
            return {task: head(self.encoder(images, task=task), size) for task, head in self.heads.items()}
        features = self.encoder(images)
        if self.cut_representation and self.training and torch.is_grad_enabled():
            self.representation = CutRepresentation(features, self.tasks)
            return {task: head(self.representation.leaves[task], size) for task, head in self.heads.items()}
        return {task: head(features, size) for task, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trainable encoder parameters, less those a task-specific encoder routes to one task."""
        return [
            parameter
            for name, parameter in self.encoder.named_parameters()
            if parameter.requires_grad and not (self.encoder.task_specific and TASK_OWNED_PARAMETER in name)
        ]


def _representation_refusal(config: ModelConfig) -> str | None:
    return "its TESLA encoder computes features per task" if config.encoder.adapter.tesla else None


@register_architecture(
    "hps", "hard parameter sharing: one shared encoder, one head per task (the release's MOLA)", representation=_representation_refusal
)
def build_hps(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> HardParameterSharing:
    encoder = ENCODERS.get(config.encoder.name)(config.encoder, tuple(tasks), input_size)
    heads = build_task_heads(config, tasks, encoder.out_channels, num_classes, num_activities)
    return HardParameterSharing(encoder, heads, input_size, config.align_corners)
