"""Cross-stitch networks (baselines/models/cross_stitch.py) on resnet50, tiny dinov2 and tiny endovit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from baselines.config import AdapterConfig, load_config
from baselines.models.cross_stitch import CrossStitchUnit, _check
from baselines.models.stages import MAP, TOKENS
from mtlbench.errors import InputError
from tests.architecture_toy import BOTH, CLASSES, check_outputs, settings
from tests.architecture_toy import build as build_architecture, tiny_dinov2 as tiny_dinov2_of

ARCHITECTURE = "cross_stitch"
RESNET, TINY, ENDOVIT = settings(ARCHITECTURE)


def build(preset, overrides, input_size, tasks=BOTH):
    return build_architecture(ARCHITECTURE, preset, overrides, input_size, tasks)


def tiny_dinov2(*extra):
    return tiny_dinov2_of(ARCHITECTURE, *extra)


def test_unit_mixes_channels_as_hand_computed():
    unit = CrossStitchUnit(2, 3, MAP)
    assert torch.allclose(unit.alpha[:, :, 0], torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [[0.5, 0.0, 1.0], [0.5, 1.0, -1.0]]]))
    a = torch.tensor([1.0, 10.0, 100.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    b = torch.tensor([2.0, 20.0, 200.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    mixed_a, mixed_b = unit([a, b])
    # task 0: channel 0 = 1*1 + 0*2, channel 1 = 2*10 + 1*20, channel 2 = 0*100 + 3*200
    assert torch.equal(mixed_a[0, :, 0, 0], torch.tensor([1.0, 40.0, 600.0]))
    # task 1: 0.5*1 + 0.5*2, 0*10 + 1*20, 1*100 - 1*200
    assert torch.equal(mixed_b[0, :, 1, 1], torch.tensor([1.5, 20.0, -100.0]))
    tokens = CrossStitchUnit(3, 2, TOKENS)
    assert torch.allclose(tokens.alpha[0, :, 0], torch.tensor([0.9, 0.05, 0.05]))
    streams = [torch.full((1, 4, 2), float(value)) for value in (1, 2, 3)]
    assert torch.allclose(tokens(streams)[1], torch.full((1, 4, 2), 0.05 * 1 + 0.9 * 2 + 0.05 * 3))
    assert torch.equal(CrossStitchUnit(1, 2, MAP).alpha, torch.ones(1, 1, 2))


def test_resnet50_shapes_units_and_shared_parameters():
    model = build("hps-resnet50", RESNET, (64, 64))
    assert [unit.alpha.shape[-1] for unit in model.units] == [256, 512, 1024, 2048]
    assert model.encoders["activity"] is not model.encoders["segmentation"]
    model.eval()
    with torch.no_grad():
        check_outputs(model, torch.randn(2, 3, 72, 64))  # resized to 64x64 first
    names = {name for name, p in model.named_parameters() if p.requires_grad and name.startswith(("encoders.", "units."))}
    shared = {id(p) for p in model.shared_parameters()}
    assert {name for name, p in model.named_parameters() if id(p) in shared} == names
    assert not any(name.startswith("heads.") for name, p in model.named_parameters() if id(p) in shared)


def test_tiny_dinov2_copies_keep_frozen_state_and_adapters():
    # endoarss-tiny trains its backbone; freeze it to check that each copy keeps the frozen base and its own adapters
    model = tiny_dinov2("model.encoder.freeze=true")
    assert [unit.layout for unit in model.units] == [TOKENS, TOKENS, TOKENS, MAP]
    first, second = model.encoders["activity"], model.encoders["segmentation"]
    states = [{name: p.requires_grad for name, p in encoder.named_parameters()} for encoder in (first, second)]
    assert states[0] == states[1] and not all(states[0].values()) and any(states[0].values())
    assert first.vit.blocks[0].mlp.fc1.lora_A is not second.vit.blocks[0].mlp.fc1.lora_A
    assert torch.equal(first.vit.blocks[0].mlp.fc1.lora_A, second.vit.blocks[0].mlp.fc1.lora_A)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad and not name.startswith("heads.")}
    assert {name for name, p in model.named_parameters() if any(p is q for q in model.shared_parameters())} == trainable
    assert all("lora_" in name or "sma" in name or name.startswith("units.") for name in trainable)
    check_outputs(model.eval(), torch.randn(2, 3, 56, 70))


def test_tiny_endovit_shapes():
    model = build("endoarss-tiny", ENDOVIT, (64, 80)).eval()
    assert len(model.units) == 2
    with torch.no_grad():
        check_outputs(model, torch.randn(2, 3, 64, 80))


def test_a_task_reaches_another_tasks_encoder_only_through_the_units():
    model = tiny_dinov2().eval()
    images = torch.randn(2, 3, 56, 70)
    other = model.encoders["segmentation"]
    model(images)["activity"].sum().backward()
    assert other.vit.patch_embed.proj.weight.grad.abs().sum() > 0  # through alpha_D
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for unit in model.units:
            unit.alpha[0, 1].zero_()  # activity no longer reads the segmentation stream
    model(images)["activity"].sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in other.parameters())
    assert all(unit.alpha.grad[0, 1].abs().sum() > 0 for unit in model.units)  # the unit itself still learns


def test_training_steps_without_nan():
    model = tiny_dinov2().train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels, masks = torch.randn(4, 3, 56, 70), torch.tensor([0, 1, 2, 0]), torch.randint(0, CLASSES, (4, 56, 70))
    before = [unit.alpha.detach().clone() for unit in model.units]
    for _ in range(2):
        outputs = model(images)
        loss = torch.nn.functional.cross_entropy(outputs["activity"], labels) + torch.nn.functional.cross_entropy(outputs["segmentation"], masks)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(before[0], model.units[0].alpha)


def test_refusals():
    with pytest.raises(InputError, match="cross_stitch already has task-specific parts: TESLA task-specific adapters are not supported"):
        load_config("endoarss-tiny", [*TINY, "model.encoder.adapter.tesla=true"])
    other = SimpleNamespace(encoder=SimpleNamespace(name="other", adapter=AdapterConfig()))
    with pytest.raises(InputError, match="cross_stitch runs the encoder stage by stage, which only resnet50, dinov2, endovit support"):
        _check(other)
