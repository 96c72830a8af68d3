"""SMA: EMA attention keeps shapes, treats channel groups as independent samples with shared weights, trains."""

from __future__ import annotations

import pytest
import torch

from baselines.config import EncoderConfig, SMAConfig
from baselines.models.dinov2 import build_dinov2_encoder
from baselines.models.sma import EfficientMultiScaleAttention, InputSMA, TokenSMA

TASKS = ("activity", "segmentation")


def test_modules_keep_the_input_shape():
    assert EfficientMultiScaleAttention(16, 4)(torch.randn(2, 16, 5, 7)).shape == (2, 16, 5, 7)
    assert InputSMA(channels=16, groups=4)(torch.randn(2, 3, 28, 42)).shape == (2, 3, 28, 42)
    assert TokenSMA(channels=24, groups=4)(torch.randn(2, 24, 2, 3)).shape == (2, 24, 2, 3)


def test_groups_are_independent_samples_sharing_weights():
    torch.manual_seed(0)
    grouped = EfficientMultiScaleAttention(channels=12, groups=3)
    single = EfficientMultiScaleAttention(channels=4, groups=1)
    single.load_state_dict(grouped.state_dict())  # same shapes: one group's worth of weights
    x = torch.randn(2, 12, 6, 5)
    with torch.no_grad():
        out = grouped(x)
        assert torch.allclose(out, torch.cat([single(chunk) for chunk in x.chunk(3, dim=1)], dim=1), atol=1e-6)
        order = torch.tensor([2, 0, 1])
        permuted = x.reshape(2, 3, 4, 6, 5)[:, order].reshape(2, 12, 6, 5)
        assert torch.allclose(grouped(permuted), out.reshape(2, 3, 4, 6, 5)[:, order].reshape(2, 12, 6, 5), atol=1e-6)


def test_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="divisible"):
        EfficientMultiScaleAttention(10, 4)


@pytest.mark.parametrize("placement", ["input", "tokens"])
def test_encoder_placements_keep_the_feature_shape_and_train(placement):
    config = EncoderConfig(variant="vits14", depth=1, embed_dim=48, num_heads=2, sma=SMAConfig(placement=placement, groups=4, channels=16))
    encoder = build_dinov2_encoder(config, TASKS, (56, 70))
    sma = encoder.input_sma if placement == "input" else encoder.token_sma
    parameters = list(sma.parameters())
    assert parameters and all(parameter.requires_grad for parameter in parameters)
    images = torch.randn(2, 3, 56, 70, requires_grad=True)
    features = encoder(images)
    assert features.shape == (2, 48, 4, 5)
    features.square().mean().backward()
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in parameters)
    assert images.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in encoder.vit.parameters())  # frozen base
