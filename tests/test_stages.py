"""Running encoders stage by stage (baselines/models/stages.py): the stages compose to the encoder exactly."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from baselines.config import AdapterConfig, EncoderConfig, ModelConfig, SMAConfig
from baselines.models.dinov2 import build_dinov2_encoder
from baselines.models.endovit import build_endovit_encoder
from baselines.models.resnet import build_resnet50_encoder
from baselines.models.stages import MAP, TOKENS, block_groups, check_splittable, split_encoder
from mtlbench.errors import InputError

TASKS = ("activity", "segmentation")
TINY_VIT = {"variant": "vits14", "depth": 4, "embed_dim": 48, "num_heads": 2}


def dinov2(**settings):
    torch.manual_seed(0)
    return build_dinov2_encoder(EncoderConfig(**{**TINY_VIT, "freeze": False, **settings}), TASKS, (56, 70)).eval()


def run(stages, images):
    outputs = []
    x = images
    for stage in stages:
        x = stage(x)
        outputs.append(x)
    return outputs


def test_block_groups():
    assert block_groups(12) == [range(0, 3), range(3, 6), range(6, 9), range(9, 12)]
    assert block_groups(6) == [range(0, 2), range(2, 4), range(4, 5), range(5, 6)]
    assert block_groups(2) == [range(0, 1), range(1, 2)]
    assert block_groups(1) == [range(0, 1)]


def test_resnet50_stages_as_libmtl_and_exact():
    torch.manual_seed(0)
    encoder = build_resnet50_encoder(EncoderConfig(name="resnet50", freeze=False, adapter=AdapterConfig(kind="none")), TASKS, (64, 64)).eval()
    stages = split_encoder(encoder)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outputs = run(stages, images)
        expected = encoder(images)
    assert [tuple(o.shape) for o in outputs] == [(2, 256, 16, 16), (2, 512, 8, 8), (2, 1024, 8, 8), (2, 2048, 8, 8)]
    assert stages.channels == [256, 512, 1024, 2048] and stages.layouts == [MAP] * 4
    assert torch.equal(outputs[-1], expected)
    # stage = last(body(.)): the body ends before the layer's last bottleneck (LibMTL's layer[:-1] / layer[-1])
    assert stages[1].last is encoder.layer2[-1]
    with torch.no_grad():
        assert torch.equal(stages[1].last(stages[1].body(outputs[0])), outputs[1])


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"sma": SMAConfig(placement="tokens", groups=4)},
        {"sma": SMAConfig(placement="input", groups=4, channels=16)},
        {"adapter": AdapterConfig(kind="dv-lora", rank=2), "variant": "vits14_reg4"},
        {"feature_layout": "release_view", "embed_dim": 40, "num_heads": 2},
    ],
    ids=["plain", "token-sma", "input-sma", "dv-lora-registers", "release-view"],
)
def test_dinov2_stages_compose_to_the_encoder_exactly(settings):
    encoder = dinov2(**settings)
    stages = split_encoder(encoder)
    images = torch.randn(2, 3, 56, 70)
    with torch.no_grad():
        outputs = run(stages, images)
        expected = encoder(images)
    assert len(stages) == 4 and stages.layouts == [TOKENS, TOKENS, TOKENS, MAP]
    prefix = stages.num_prefix_tokens
    assert prefix == (5 if "registers" in str(settings.get("variant", "")) or settings.get("variant") == "vits14_reg4" else 1)
    dim = settings.get("embed_dim", 48)
    for output in outputs[:-1]:
        assert output.shape == (2, prefix + 4 * 5, dim)
    assert outputs[-1].shape[1] == encoder.out_channels == stages.channels[-1]
    assert torch.equal(outputs[-1], expected)


def test_dinov2_deep_stages_group_blocks():
    encoder = dinov2(depth=8)
    stages = split_encoder(encoder)
    assert len(stages) == 4
    assert stages[2].last is encoder.vit.blocks[5]
    images = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        assert torch.equal(stages(images), encoder(images))


def test_shallow_vit_has_one_stage_per_block():
    encoder = dinov2(depth=2)
    stages = split_encoder(encoder)
    assert len(stages) == 2 and stages[1].last is encoder.vit.blocks[1]
    images = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        assert torch.equal(stages(images), encoder(images))


def test_endovit_stages_compose_exactly():
    torch.manual_seed(0)
    encoder = build_endovit_encoder(EncoderConfig(name="endovit", depth=4, embed_dim=48, num_heads=2, freeze=False, adapter=AdapterConfig(kind="none")), TASKS, (64, 80))
    stages = split_encoder(encoder)
    images = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        outputs = run(stages, images)
        expected = encoder(images)
    assert stages.num_prefix_tokens == 1 and outputs[0].shape == (2, 1 + 4 * 5, 48)
    assert torch.equal(outputs[-1], expected)


def test_gradients_flow_through_the_stages():
    encoder = dinov2(adapter=AdapterConfig(kind="lora", rank=2), sma=SMAConfig(placement="tokens", groups=4))
    stages = split_encoder(encoder)
    stages(torch.randn(1, 3, 56, 70)).sum().backward()
    assert encoder.vit.blocks[0].mlp.fc1.lora_A.grad is not None
    assert encoder.vit.patch_embed.proj.weight.grad is not None
    assert any(p.grad is not None for p in encoder.token_sma.parameters())


def test_tesla_encoders_split_per_task_only():
    encoder = dinov2(adapter=AdapterConfig(kind="lora", rank=2, tesla=True))
    for parameter in encoder.parameters():  # non-zero B so that the tasks differ
        torch.nn.init.normal_(parameter, std=0.02) if parameter.ndim > 1 else None
    with pytest.raises(ValueError, match="task-specific \\(TESLA\\) adapters: split it for one task"):
        split_encoder(encoder)
    images = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        for task in TASKS:
            stages = split_encoder(encoder, task=task)
            assert torch.equal(stages(images), encoder(images, task=task))
        assert not torch.equal(split_encoder(encoder, task=TASKS[0])(images), encoder(images, task=TASKS[1]))


def test_deep_copies_stay_consistent():
    encoder = dinov2()
    holder = torch.nn.Module()
    holder.encoder = encoder
    holder.stages = split_encoder(encoder)
    copied = copy.deepcopy(holder)
    assert copied.stages[0].last is copied.encoder.vit.blocks[0]
    with torch.no_grad():
        copied.encoder.vit.norm.bias.add_(1.0)
        images = torch.randn(1, 3, 56, 70)
        assert torch.equal(copied.stages(images), copied.encoder(images))


def test_unknown_encoders_are_refused():
    with pytest.raises(ValueError, match="cannot run a Linear stage by stage"):
        split_encoder(torch.nn.Linear(2, 2))


def test_configuration_refusals():
    with pytest.raises(InputError, match="only resnet50, dinov2, endovit support"):
        other = SimpleNamespace(encoder=SimpleNamespace(name="other", adapter=AdapterConfig()))  # the config only knows registered names
        check_splittable(other, "mtan")
    tesla = ModelConfig(encoder=EncoderConfig(adapter=AdapterConfig(kind="lora", tesla=True)))
    with pytest.raises(InputError, match="TESLA task-specific adapters are not supported"):
        check_splittable(tesla, "mtan")
    check_splittable(tesla, "ple", tesla=True)
