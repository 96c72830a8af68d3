"""Hard parameter sharing (the EndoARSS release's "MOLA"): one shared encoder, one head per task."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.config import ModelConfig
from baselines.models.heads import build_task_heads
from baselines.models.registries import ARCHITECTURES, ENCODERS

# Parameters of a task-specific encoder whose name holds this are owned by one task (TESLA's
# per-task B matrices), so they are not shared: weighting methods balance shared gradients only.
TASK_OWNED_PARAMETER = "lora_B"


class HardParameterSharing(nn.Module):
    """forward(images) -> {task: logits}: activity (B, A), segmentation (B, K, H, W) at the size of `images`.

    Images of another size than the encoder's `input_size` are resized to it bilinearly first (the
    release loads 244 px frames and resizes them to 224 in the model, with align_corners=True).
    """

    def __init__(self, encoder: nn.Module, heads: nn.ModuleDict, input_size: tuple[int, int], align_corners: bool = False):
        super().__init__()
        self.encoder = encoder
        self.heads = heads
        self.tasks = tuple(heads)
        self.input_size = tuple(input_size)
        self.align_corners = align_corners

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        size = images.shape[-2:]
        if tuple(size) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=self.align_corners)
        if self.encoder.task_specific:
            return {task: head(self.encoder(images, task=task), size) for task, head in self.heads.items()}
        features = self.encoder(images)
        return {task: head(features, size) for task, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trainable encoder parameters, less those a task-specific encoder routes to one task."""
        return [
            parameter
            for name, parameter in self.encoder.named_parameters()
            if parameter.requires_grad and not (self.encoder.task_specific and TASK_OWNED_PARAMETER in name)
        ]


@ARCHITECTURES.register("hps")
def build_hps(
    config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]
) -> HardParameterSharing:
    encoder = ENCODERS.get(config.encoder.name)(config.encoder, tuple(tasks), input_size)
    heads = build_task_heads(config, tasks, encoder.out_channels, num_classes, num_activities)
    return HardParameterSharing(encoder, heads, input_size, config.align_corners)
