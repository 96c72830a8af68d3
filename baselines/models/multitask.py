"""What every EndoARSS architecture shares: one head per task, and images resized to the encoder's input size first."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MultiTaskModel(nn.Module):
    """The base of the architectures: forward(images) -> {task: logits}, with shared_parameters().

    A subclass sets its own modules first and then calls `attach_heads`, so that its parameters
    keep their order (encoder, then heads) in state_dict() and in the optimiser.
    """

    def attach_heads(self, heads: nn.ModuleDict, input_size: tuple[int, int], align_corners: bool) -> None:
        self.heads = heads
        self.tasks = tuple(heads)
        self.input_size = tuple(input_size)
        self.align_corners = align_corners

    def resize_input(self, images: Tensor) -> Tensor:
        """Images of another size than the encoder's `input_size`, resized to it bilinearly (the
        release loads 244 px frames and resizes them to 224 in the model, with align_corners=True)."""
        if tuple(images.shape[-2:]) == self.input_size:
            return images
        return F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=self.align_corners)
