"""What every EndoARSS architecture does first with its images."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def resize_to_input(images: Tensor, input_size: tuple[int, int], align_corners: bool) -> Tensor:
    """Images of another size than the encoder's `input_size`, resized to it bilinearly (the
    release loads 244 px frames and resizes them to 224 in the model, with align_corners=True)."""
    if tuple(images.shape[-2:]) == tuple(input_size):
        return images
    return F.interpolate(images, size=tuple(input_size), mode="bilinear", align_corners=align_corners)
