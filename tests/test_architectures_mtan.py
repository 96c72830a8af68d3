"""MTAN (baselines/models/mtan.py) on resnet50, tiny dinov2 and tiny endovit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from baselines.config import AdapterConfig, load_config
from baselines.models.mtan import TokenTransfer, _check
from baselines.models.resnet import Bottleneck
from mtlbench.errors import InputError
from tests.architecture_toy import BOTH, CLASSES, check_outputs, names_of, settings
from tests.architecture_toy import build as build_architecture, tiny_dinov2 as tiny_dinov2_of

ARCHITECTURE = "mtan"
RESNET, TINY, ENDOVIT = settings(ARCHITECTURE)


def build(preset, overrides, input_size, tasks=BOTH):
    return build_architecture(ARCHITECTURE, preset, overrides, input_size, tasks)


def tiny_dinov2(*extra):
    return tiny_dinov2_of(ARCHITECTURE, *extra)


def test_resnet50_modules_as_libmtl():
    model = build("hps-resnet50", RESNET, (64, 64))
    # attention: in (256 | 2C), hidden C/4, out C per stage and task; shared bottlenecks 256->512->1024->2048
    for index, width in enumerate((256, 512, 1024, 2048)):
        for task in BOTH:
            first, second = model.attention[index][task][0], model.attention[index][task][3]
            assert (first.in_channels, first.out_channels, second.out_channels) == (width if index == 0 else 2 * width, width // 4, width)
    assert all(isinstance(block, Bottleneck) for block in model.transfer) and len(model.transfer) == 3
    assert [block.conv3.out_channels for block in model.transfer] == [512, 1024, 2048]
    model.eval()
    with torch.no_grad():
        check_outputs(model, torch.randn(2, 3, 64, 64))
    trainable_encoder = {name for name, p in model.named_parameters() if name.startswith("encoder.") and p.requires_grad}
    assert names_of(model, model.shared_parameters()) == trainable_encoder


def test_tiny_dinov2_shapes_and_shared_parameters():
    model = tiny_dinov2()
    assert len(model.attention) == 4 and len(model.transfer) == 3
    assert all(isinstance(block, TokenTransfer) for block in model.transfer)
    assert model.attention[1]["activity"][0].in_features == 96 and model.attention[0]["activity"][0].in_features == 48
    check_outputs(model.eval(), torch.randn(2, 3, 56, 70))
    shared = names_of(model, model.shared_parameters())
    assert shared == {name for name, p in model.named_parameters() if name.startswith("encoder.") and p.requires_grad}
    assert any("sma" in name for name in shared) and any("lora_" in name for name in shared)


def test_frozen_dinov2_keeps_the_base_frozen():
    model = tiny_dinov2("model.encoder.freeze=true")
    shared = names_of(model, model.shared_parameters())
    assert shared and all("lora_" in name or "sma" in name for name in shared)
    assert all(p.requires_grad for p in model.attention.parameters())


def test_tiny_endovit_shapes():
    model = build("endoarss-tiny", ENDOVIT, (64, 80)).eval()
    assert len(model.attention) == 2
    with torch.no_grad():
        check_outputs(model, torch.randn(2, 3, 64, 80))


def test_gradients_reach_only_the_tasks_own_attention_and_the_shared_parts():
    model = tiny_dinov2().eval()
    model(torch.randn(2, 3, 56, 70))["activity"].sum().backward()
    reached = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert not any(name.startswith(("attention.", "heads.")) and ".segmentation." in name for name in reached)
    assert any(name.startswith("attention.3.activity.") for name in reached)
    assert any(name.startswith("encoder.vit.blocks.0.") for name in reached)
    assert any(name.startswith("transfer.0.") for name in reached)


def test_masks_are_sigmoid_gates_on_the_stage_output():
    model = tiny_dinov2().eval()
    images = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        for task in BOTH:  # masks of one: the attended stream is the stage output itself
            for module in model.attention:
                last = module[task][3]
                last.weight.zero_()
                last.bias.fill_(1e4)
        stage = model.stages[0]
        inner = stage.body(images)
        mask = model.attention[0]["activity"](inner)
        assert torch.equal(mask, torch.ones_like(mask))
        # with all masks 1 and identity transfers, every task reads exactly the encoder's features
        for block in model.transfer:
            block.mlp[2].weight.zero_()
            block.mlp[2].bias.zero_()
        features = model.encoder(images)
        seen = {}
        for task, head in model.heads.items():
            head.forward = lambda x, size, task=task: seen.setdefault(task, x)
        model(images)
        assert all(torch.allclose(seen[task], features, atol=1e-6) for task in BOTH)


def test_training_steps_without_nan():
    model = tiny_dinov2().train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels, masks = torch.randn(4, 3, 56, 70), torch.tensor([0, 1, 2, 0]), torch.randint(0, CLASSES, (4, 56, 70))
    for _ in range(2):
        outputs = model(images)
        loss = torch.nn.functional.cross_entropy(outputs["activity"], labels) + torch.nn.functional.cross_entropy(outputs["segmentation"], masks)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resnet50_training_step():
    model = build("hps-resnet50", RESNET, (64, 64)).train()
    outputs = model(torch.randn(2, 3, 64, 64))
    loss = outputs["activity"].logsumexp(1).mean() + outputs["segmentation"].logsumexp(1).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert model.attention[2]["segmentation"][0].weight.grad is not None


def test_refusals():
    with pytest.raises(InputError, match="mtan already has task-specific parts: TESLA task-specific adapters are not supported"):
        load_config("endoarss-tiny", [*TINY, "model.encoder.adapter.tesla=true"])
    other = SimpleNamespace(encoder=SimpleNamespace(name="other", adapter=AdapterConfig()))
    with pytest.raises(InputError, match="mtan runs the encoder stage by stage, which only resnet50, dinov2, endovit support"):
        _check(other)
