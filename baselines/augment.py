"""Training augmentations in torch: random resized crop, horizontal flip, colour jitter.

They work on a frame already loaded at the load size (data.load_size, else data.input_size:
from the prepared cache or decoded and resized by data.resize) and give it back at that size,
so an augmented epoch is the same with and without the cache. The loader's frames are uint8 and
stay uint8 (colour jitter computes in [0, 1] and rounds back); a float image in [0, 1] works too.

Each sample's randomness comes from a generator seeded with (seed, epoch, index), so an epoch's
augmentations do not depend on the number of loader workers, the rank, or on whether the run
was resumed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from baselines.config import DataConfig

ASPECT_RANGE = (3 / 4, 4 / 3)


def load_size(config: DataConfig) -> tuple[int, int]:
    """(height, width) frames and masks are loaded, augmented and batched at."""
    return tuple(config.load_size or config.input_size)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + index)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def crop_box(height: int, width: int, scale: tuple[float, float], generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of a random resized crop (Inception-style, 10 tries, then the centre)."""
    area = height * width
    for _ in range(10):
        target = area * _uniform(generator, *scale)
        aspect = math.exp(_uniform(generator, math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])))
        crop_w, crop_h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
            left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
            return top, left, crop_h, crop_w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop back to the load size: image bilinear with antialiasing; mask by nearest neighbour so
    class ids are never blended."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image, mask
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].to(mask.dtype)
    return image, mask


def colour_jitter(image: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation each scaled by a factor in [1 - amount, 1 + amount], on
    values in [0, 1]: a uint8 image is scaled to them and rounded back."""
    brightness, contrast, saturation = (_uniform(generator, 1 - amount, 1 + amount) for _ in range(3))
    values = image.float().div_(255) if image.dtype == torch.uint8 else image
    values = values * brightness
    mean = values.mean()
    values = (values - mean) * contrast + mean
    grey = (0.299 * values[0] + 0.587 * values[1] + 0.114 * values[2])[None]
    values = ((values - grey) * saturation + grey).clamp_(0, 1)
    return values.mul_(255).round_().to(torch.uint8) if image.dtype == torch.uint8 else values


def augment(image: torch.Tensor, mask: torch.Tensor, config: DataConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A training view of one (image (3, H, W), mask (H, W)) pair at the load size, in their dtypes
    (image uint8, or float in [0, 1])."""
    top, left, crop_h, crop_w = crop_box(image.shape[1], image.shape[2], config.crop_scale, generator)
    image, mask = image[:, top : top + crop_h, left : left + crop_w], mask[top : top + crop_h, left : left + crop_w]
    image, mask = resize_pair(image, mask, load_size(config))
    if config.flip and torch.rand((), generator=generator).item() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    if config.colour_jitter > 0:
        image = colour_jitter(image, config.colour_jitter, generator)
    return image, mask
