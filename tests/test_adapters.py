"""LoRA / DV-LoRA adapters: exact no-ops at init, only A and B train, TESLA routes by task, base keys unchanged."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from baselines.config import AdapterConfig, EncoderConfig
from baselines.models.adapters import DVLoRALinear, LoRALinear, apply_adapters, is_adapter_key
from mtlbench.checkpoints import check_keys
from baselines.models.dinov2 import build_dinov2_encoder
from baselines.models.dinov2_vit import DinoVisionTransformer
from mtlbench.errors import InputError

TASKS = ("activity", "segmentation")
KINDS = ("lora", "dv-lora")


def tiny_encoder(adapter: AdapterConfig, seed: int = 0):
    torch.manual_seed(seed)
    encoder = build_dinov2_encoder(EncoderConfig(variant="vits14", depth=2, embed_dim=96, num_heads=3, adapter=adapter), TASKS, (56, 56))
    # LayerScale starts at 1e-5, which would hide the adapters' effect on the output: use a trained-like scale.
    for name, parameter in encoder.named_parameters():
        if name.endswith(".gamma"):
            parameter.data.fill_(1.0)
    return encoder


def base_snapshot(encoder: nn.Module) -> dict:
    return {key: value.clone() for key, value in encoder.state_dict().items() if not is_adapter_key(key)}


def one_step(encoder: nn.Module, loss_of_outputs) -> None:
    optimiser = torch.optim.Adam([p for p in encoder.parameters() if p.requires_grad], lr=1e-2)
    loss_of_outputs().backward()
    optimiser.step()


@pytest.mark.parametrize("kind", KINDS)
def test_adapters_are_exact_noops_at_init(kind):
    images = torch.randn(2, 3, 56, 56)
    plain = tiny_encoder(AdapterConfig(kind="none"))
    adapted = tiny_encoder(AdapterConfig(kind=kind, rank=4))
    with torch.no_grad():
        assert torch.allclose(adapted(images), plain(images), atol=1e-6)
    assert [name for name, module in adapted.vit.named_modules() if isinstance(module, LoRALinear)] == [
        f"blocks.{i}.mlp.{layer}" for i in range(2) for layer in ("fc1", "fc2")
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_only_a_and_b_train_and_the_base_stays_bit_identical(kind):
    encoder = tiny_encoder(AdapterConfig(kind=kind, rank=4))
    trainable = sorted(name for name, parameter in encoder.named_parameters() if parameter.requires_grad)
    assert trainable == sorted(f"vit.blocks.{i}.mlp.{layer}.lora_{m}" for i in range(2) for layer in ("fc1", "fc2") for m in "AB")
    images, target = torch.randn(2, 3, 56, 56), torch.randn(2, 96, 4, 4)
    with torch.no_grad():
        before = encoder(images)
    base = base_snapshot(encoder)
    one_step(encoder, lambda: ((encoder(images) - target) ** 2).mean())
    assert all(torch.equal(value, base[key]) for key, value in base_snapshot(encoder).items())
    with torch.no_grad():
        assert not torch.allclose(encoder(images), before, atol=1e-4)


def test_tesla_routes_each_task_to_its_own_b():
    encoder = tiny_encoder(AdapterConfig(kind="dv-lora", rank=4, tesla=True))
    assert encoder.task_specific
    fc1 = encoder.vit.blocks[0].mlp.fc1
    assert set(fc1.lora_B) == set(TASKS)
    images = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        before = encoder(images, task="segmentation")
    one_step(encoder, lambda: encoder(images, task="activity").square().mean())
    # Only the activity B moved; with a zero B the segmentation path still computes the base model.
    assert fc1.lora_B["activity"].abs().sum() > 0 and fc1.lora_B["segmentation"].abs().sum() == 0
    with torch.no_grad():
        assert torch.equal(encoder(images, task="segmentation"), before)
    one_step(encoder, lambda: encoder(images, task="segmentation").mean())
    assert not torch.equal(fc1.lora_B["activity"], fc1.lora_B["segmentation"])
    with pytest.raises(ValueError, match="task"):
        encoder(images)


def test_adapted_state_dict_differs_from_the_plain_vit_only_by_adapter_keys():
    plain = DinoVisionTransformer(depth=2, dim=24, heads=2)
    adapted = copy.deepcopy(plain)
    apply_adapters(adapted, AdapterConfig(kind="dv-lora", rank=2, tesla=True), TASKS)
    result = plain.load_state_dict(adapted.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys
    assert all(is_adapter_key(key) for key in result.unexpected_keys)
    assert {key.split(".", 4)[-1] for key in result.unexpected_keys} == {"lora_A", "lora_u", "lora_v", "lora_B.activity", "lora_B.segmentation"}
    report = check_keys(adapted, plain.state_dict())
    assert report.unexpected == report.mismatched == [] and all(is_adapter_key(key) for key in report.missing)


def test_the_update_follows_the_formulas():
    base = nn.Linear(5, 3)
    x = torch.randn(4, 5)
    lora = LoRALinear(base, rank=2, scale=4.0 / 2)
    dv = DVLoRALinear(base, rank=2)
    with torch.no_grad():
        for adapter in (lora, dv):
            adapter.lora_B.normal_()
        expected_lora = base(x) + 2.0 * x @ (lora.lora_B @ lora.lora_A).T
        delta = torch.diag(dv.lora_v) @ dv.lora_B @ torch.diag(dv.lora_u) @ dv.lora_A
        expected_dv = base(x) + x @ delta.T
        assert torch.allclose(lora(x), expected_lora, atol=1e-6)
        assert torch.allclose(dv(x), expected_dv, atol=1e-6)
    assert lora.weight is base.weight and lora.bias is base.bias
    assert set(dict(dv.named_parameters())) == {"weight", "bias", "lora_A", "lora_B"}  # u and v are fixed buffers


@pytest.mark.parametrize(
    "settings, where",
    [
        ({"kind": "adapterformer"}, "model.encoder.adapter.kind"),
        ({"kind": "none", "tesla": True}, "model.encoder.adapter.tesla"),
        ({"kind": "lora", "rank": 0}, "model.encoder.adapter.rank"),
    ],
)
def test_bad_adapter_settings_are_refused_when_the_configuration_is_made(settings, where):
    with pytest.raises(InputError) as raised:
        AdapterConfig(**settings)
    assert raised.value.where == where


def test_adapter_targets_must_name_layers_of_the_encoder():
    with pytest.raises(InputError) as raised:
        apply_adapters(DinoVisionTransformer(depth=1, dim=24, heads=2), AdapterConfig(kind="lora", targets=("w12",)), TASKS)
    assert raised.value.where == "model.encoder.adapter.targets"


def test_other_targets_and_no_adapter():
    vit = DinoVisionTransformer(depth=2, dim=24, heads=2)
    assert apply_adapters(vit, AdapterConfig(kind="none"), TASKS) == []
    assert apply_adapters(vit, AdapterConfig(kind="lora", targets=("qkv",)), TASKS) == ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]
