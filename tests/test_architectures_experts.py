"""The mixture-of-experts architectures: mmoe, cgc, ple, dselect_k (baselines/models/experts.py).

Tiny ViTs (dinov2, endovit) run in the default set; the resnet50 forms are encoder copies
(23.5M parameters each) and mostly marked slow.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from baselines.config import AdapterConfig, EncoderConfig, ExpertsConfig, ModelConfig, load_config
from baselines.models.experts import (
    DSelectKGate,
    SoftmaxGate,
    TokenExpert,
    binary_codes,
    dselect_regulariser,
    mix,
    smooth_step,
)
from baselines.models.registries import ARCHITECTURES
from mtlbench.errors import InputError

CLASSES, ACTIVITIES = 5, 3
BOTH = ("activity", "segmentation")
MIXTURES = ("mmoe", "cgc", "ple", "dselect_k")


def vit_config(encoder: str = "dinov2", **encoder_settings) -> ModelConfig:
    settings = {"depth": 2, "embed_dim": 32, "num_heads": 2, "freeze": False, **encoder_settings}
    if encoder == "dinov2":
        settings.setdefault("variant", "vits14")
    return ModelConfig(
        encoder=EncoderConfig(name=encoder, **settings),
        head_channels=16,
        aspp_rates=(1, 2, 3),
        dropout=0.0,
        experts=ExpertsConfig(shared=3, per_task=2, selected=2, hidden=24),
    )


def resnet_config(shared: int = 2, per_task: int = 1) -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(name="resnet50", freeze=False),
        head_channels=16,
        aspp_rates=(1, 2, 3),
        experts=ExpertsConfig(shared=shared, per_task=per_task, selected=1),
    )


SIZES = {"dinov2": (28, 42), "endovit": (32, 48), "resnet50": (64, 64)}


def build(architecture: str, config: ModelConfig, tasks=BOTH, size=None):
    torch.manual_seed(0)
    size = size or SIZES[config.encoder.name]
    return ARCHITECTURES.get(architecture)(config, tasks, CLASSES, ACTIVITIES, size)


def check_outputs(outputs: dict, batch: int, size: tuple[int, int]) -> None:
    assert set(outputs) == set(BOTH)
    assert outputs["activity"].shape == (batch, ACTIVITIES)
    assert outputs["segmentation"].shape == (batch, CLASSES, *size)


# The smooth step, binary codes and the gates, by hand


def test_smooth_step_by_hand():
    t = torch.tensor([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0])
    # the cubic -2 t^3 + 3 t / 2 + 1/2 at t = 0.25: -1/32 + 3/8 + 1/2 = 0.84375
    expected = torch.tensor([0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0, 1.0])
    assert torch.allclose(smooth_step(t, 1.0), expected)
    # gamma scales the width: S_gamma(t) = S_1(t / gamma)
    assert torch.allclose(smooth_step(2 * t, 2.0), expected)
    # continuously differentiable: zero slope at the ends, 3 / (2 gamma) in the middle
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    smooth_step(x, 1.0).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.0, 1.5, 0.0]))


def test_binary_codes_most_significant_bit_first():
    assert binary_codes(4).tolist() == [[False, False], [False, True], [True, False], [True, True]]
    assert binary_codes(3).tolist() == [[False, False], [False, True], [True, False]]
    assert binary_codes(5).shape == (5, 3) and binary_codes(5)[4].tolist() == [True, False, False]
    assert binary_codes(1).shape == (1, 0)


def fixed_dselect_gate() -> DSelectKGate:
    """4 experts, 2 selectors, gamma 1; the logits are the biases (zero weights)."""
    gate = DSelectKGate(features=3, experts=4, selected=2, gamma=1.0)
    with torch.no_grad():
        gate.z_logits.weight.zero_()
        gate.w_logits.weight.zero_()
        gate.z_logits.bias.copy_(torch.tensor([2.0, -2.0, 0.0, 0.25]))  # selector 0: bits (1, 0); selector 1: (0.5, 0.84375)
        gate.w_logits.bias.copy_(torch.tensor([0.0, math.log(3.0)]))  # selector mixing 1/4, 3/4
    return gate


def test_dselect_k_selection_weights_by_hand():
    gate = fixed_dselect_gate().eval()
    x = torch.randn(2, 3)
    selectors = gate.selectors(x)
    # selector 0 picks expert 2 (code 10) outright
    assert torch.allclose(selectors[:, 0], torch.tensor([0.0, 0.0, 1.0, 0.0]).expand(2, 4))
    # selector 1: expert i gets prod over bits of S if the bit is 1 else 1 - S, S = (0.5, 0.84375)
    by_hand = torch.tensor([0.5 * 0.15625, 0.5 * 0.84375, 0.5 * 0.15625, 0.5 * 0.84375])
    assert torch.allclose(selectors[:, 1], by_hand.expand(2, 4))
    weights = gate(x)
    expected = 0.25 * torch.tensor([0.0, 0.0, 1.0, 0.0]) + 0.75 * by_hand
    assert torch.allclose(weights, expected.expand(2, 4))
    assert torch.allclose(weights.sum(dim=1), torch.ones(2))
    assert torch.allclose(expected, torch.tensor([0.05859375, 0.31640625, 0.30859375, 0.31640625]))


def test_dselect_k_gate_initialisation_follows_the_official_code():
    gate = DSelectKGate(features=10, experts=8, selected=3, gamma=2.0)
    assert gate.z_logits.out_features == 3 * 3 and gate.w_logits.out_features == 3
    assert gate.z_logits.weight.abs().max() <= 0.02 and gate.w_logits.weight.abs().max() <= 0.05


@pytest.mark.parametrize("experts", [3, 4])
def test_dselect_k_regulariser_gradient_is_added_in_training(experts):
    """The hook's gradient is that of loss + regulariser (entropy; 1 / reachable weight when not a power of 2)."""
    torch.manual_seed(0)
    gate = DSelectKGate(features=6, experts=experts, selected=2, gamma=1.0).train()
    with torch.no_grad():
        gate.z_logits.weight.mul_(30)  # selectors away from uniform, so the penalty has a gradient
    x, target = torch.randn(4, 6), torch.randn(4, experts)
    (gate(x) * target).sum().backward()
    hooked = [p.grad.clone() for p in gate.parameters()]
    gate.zero_grad()
    gate.eval()  # no hook: the regulariser added to the loss by hand
    loss = (gate(x) * target).sum() + dselect_regulariser(gate.selectors(x), power_of_two=experts == 4)
    loss.backward()
    for got, expected in zip(hooked, (p.grad for p in gate.parameters())):
        assert torch.allclose(got, expected, atol=1e-6)


def test_dselect_regulariser_by_hand():
    selectors = torch.tensor([[[0.5, 0.25, 0.25]]])
    entropy = -(0.5 * math.log(0.5 + 1e-6) + 2 * 0.25 * math.log(0.25 + 1e-6))
    assert dselect_regulariser(selectors, power_of_two=True).item() == pytest.approx(1e-6 * entropy)
    assert dselect_regulariser(selectors, power_of_two=False).item() == pytest.approx(1e-6 * entropy + 1.0)


def test_softmax_gate_sums_to_one_and_mixes_by_hand():
    gate = SoftmaxGate(4, 2)
    assert torch.allclose(gate(torch.randn(5, 4)).sum(dim=1), torch.ones(5))
    with torch.no_grad():
        gate.linear.weight.zero_()
        gate.linear.bias.copy_(torch.tensor([0.0, math.log(3.0)]))
    weights = gate(torch.randn(2, 4))
    assert torch.allclose(weights, torch.tensor([[0.25, 0.75]] * 2))
    outputs = [torch.full((2, 3, 2, 2), 4.0), torch.full((2, 3, 2, 2), 8.0)]
    assert torch.allclose(mix(weights, outputs), torch.full((2, 3, 2, 2), 0.25 * 4 + 0.75 * 8))


def test_token_expert_acts_per_token_on_maps_and_sequences():
    expert = TokenExpert(6, 5)
    feature_map = torch.randn(2, 6, 3, 4)
    out = expert(feature_map)
    assert out.shape == feature_map.shape
    by_position = feature_map[:, :, 1, 2]
    assert torch.allclose(out[:, :, 1, 2], by_position + expert.fc2(expert.act(expert.fc1(by_position))), atol=1e-6)
    expert.tokens = True
    tokens = feature_map.flatten(2).transpose(1, 2)
    assert torch.allclose(expert(tokens), out.flatten(2).transpose(1, 2), atol=1e-6)


# Shapes


@pytest.mark.parametrize("architecture", MIXTURES)
def test_the_tiny_preset_builds(architecture):
    config = load_config("endoarss-tiny", [f"model.architecture={architecture}"])
    model = ARCHITECTURES.get(architecture)(config.model, BOTH, CLASSES, ACTIVITIES, config.data.input_size)
    with torch.no_grad():
        check_outputs(model.eval()(torch.randn(1, 3, *config.data.input_size)), 1, config.data.input_size)


@pytest.mark.parametrize(("architecture", "task"), [("mmoe", "activity"), ("cgc", "segmentation"), ("ple", "activity"), ("dselect_k", "segmentation")])
def test_a_single_task_works(architecture, task):
    model = build(architecture, vit_config(), tasks=(task,))
    assert set(model(torch.randn(1, 3, *SIZES["dinov2"]))) == {task}


def test_resnet_mmoe_experts_are_encoder_copies_gated_on_the_image():
    model = build("mmoe", resnet_config(shared=2)).eval()
    (level,) = model.levels
    assert model.encoder is None and len(level.shared) == 2 and type(level.shared[0]).__name__ == "DilatedResNet50"
    assert level.gates["activity"].linear.in_features == 3 * 64 * 64
    with torch.no_grad():
        check_outputs(model(torch.randn(1, 3, 64, 64)), 1, (64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["cgc", "dselect_k", "ple"])
def test_resnet_forward_and_train_step(architecture):
    model = build(architecture, resnet_config(shared=2 if architecture == "dselect_k" else 1))
    train_step(model, (64, 64))


@pytest.mark.slow
def test_resnet_ple_levels_are_libmtl_s():
    model = build("ple", resnet_config(shared=1, per_task=1))
    assert len(model.levels) == 5
    # the gates read each level's input flattened: image, stem (64, H/4), layer1 (256, H/4), layer2 (512, H/8), layer3 (1024, H/8)
    sizes = [level.gates["segmentation"].linear.in_features for level in model.levels]
    assert sizes == [3 * 64 * 64, 64 * 16 * 16, 256 * 16 * 16, 512 * 8 * 8, 1024 * 8 * 8]
    assert type(model.levels[4].shared[0][0]).__name__ == "Bottleneck"


# The structure: mixtures, shared parameters, gradients


def test_mmoe_output_is_the_gated_sum_of_the_experts_over_the_shared_encoder():
    model = build("mmoe", vit_config()).eval()
    images = torch.randn(2, 3, *SIZES["dinov2"])
    captured = {}
    model.heads["activity"].register_forward_pre_hook(lambda module, args: captured.setdefault("features", args[0]))
    with torch.no_grad():
        model(images)
        features = model.encoder(images)
        (level,) = model.levels
        weights = level.gates["activity"](features.mean(dim=(2, 3)))
        expected = sum(weights[:, i, None, None, None] * expert(features) for i, expert in enumerate(level.shared))
    assert weights.shape == (2, 3) and torch.allclose(weights.sum(dim=1), torch.ones(2))
    assert torch.allclose(captured["features"], expected, atol=1e-5)


@pytest.mark.parametrize("architecture", MIXTURES)
def test_the_shared_encoder_and_shared_experts_run_once(architecture):
    model = build(architecture, vit_config())
    calls = {"encoder": 0, "expert": 0}
    model.encoder.vit.patch_embed.register_forward_hook(lambda *args: calls.__setitem__("encoder", calls["encoder"] + 1))
    model.levels[0].shared[0].register_forward_hook(lambda *args: calls.__setitem__("expert", calls["expert"] + 1))
    model(torch.randn(1, 3, *SIZES["dinov2"]))
    assert calls == {"encoder": 1, "expert": 1}


def expected_shared(model) -> set[str]:
    """Trainable parameters of the encoder and of every level's shared experts, by name."""
    return {
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and (name.startswith("encoder.") or (name.startswith("levels.") and name.split(".")[2] == "shared"))
    }


def shared_names(model) -> set[str]:
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    shared = model.shared_parameters()
    assert len(shared) == len({id(p) for p in shared})
    return {names[id(parameter)] for parameter in shared}


@pytest.mark.parametrize("architecture", MIXTURES)
def test_shared_parameters_are_the_encoder_and_the_shared_experts(architecture):
    model = build(architecture, vit_config())
    names = shared_names(model)
    assert names == expected_shared(model)
    assert any(name.startswith("encoder.vit.blocks.") for name in names)
    assert not any(".gates." in name or ".specific." in name or name.startswith("heads.") for name in names)
    levels = 2 if architecture == "ple" else 1  # ple: one level per block of the 2-block ViT
    assert len(model.levels) == levels
    assert sum(name.endswith("shared.0.fc1.weight") for name in names) == levels


@pytest.mark.parametrize("architecture", MIXTURES)
def test_a_frozen_encoder_shares_only_its_adapters(architecture):
    config = vit_config(freeze=True, adapter=AdapterConfig(kind="dv-lora", rank=2))
    model = build(architecture, config)
    names = shared_names(model)
    encoder_names = {name for name in names if name.startswith("encoder.")}
    assert encoder_names and all(".lora_" in name for name in encoder_names)
    assert not any(p.requires_grad for name, p in model.encoder.named_parameters() if ".lora_" not in name)
    assert names == expected_shared(model)
    train_step(model, SIZES["dinov2"])


@pytest.mark.parametrize("architecture", MIXTURES)
@pytest.mark.parametrize("task", BOTH)
def test_a_task_loss_reaches_its_own_gate_and_experts_and_the_shared_ones(architecture, task):
    model = build(architecture, vit_config())
    model(torch.randn(2, 3, *SIZES["dinov2"]))[task].float().square().mean().backward()
    other = next(t for t in BOTH if t != task)
    for index, level in enumerate(model.levels):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in level.gates[task].parameters() if p.numel()), index
        assert all(p.grad is None for p in level.gates[other].parameters()), index
        assert all(p.grad is not None for p in level.shared.parameters()), index
        assert all(p.grad is not None for p in level.specific[task].parameters()), index
        assert all(p.grad is None for p in level.specific[other].parameters()), index
    assert all(p.grad is None for p in model.heads[other].parameters())
    assert model.encoder.vit.blocks[0].attn.qkv.weight.grad is not None


def test_cgc_and_ple_have_task_specific_experts_and_mmoe_none():
    for architecture, specific in (("mmoe", 0), ("dselect_k", 0), ("cgc", 2), ("ple", 2)):
        model = build(architecture, vit_config())
        assert all(len(level.specific[task]) == specific for level in model.levels for task in BOTH)
        assert all(len(level.shared) == 3 for level in model.levels)


def test_dselect_k_gates_select_k_of_the_shared_experts():
    model = build("dselect_k", vit_config())
    gate = model.levels[0].gates["segmentation"]
    assert isinstance(gate, DSelectKGate) and gate.selected == 2 and gate.bits == 2 and not gate.power_of_two


def test_ple_on_a_vit_has_a_level_per_stage_reading_tokens_then_the_map():
    model = build("ple", vit_config(depth=4))
    assert len(model.levels) == 4
    assert [level.tokens_prefix for level in model.levels] == [1, 1, 1, None]
    assert [level.shared[0].tokens for level in model.levels] == [True, True, True, False]


# Training


def train_step(model, size, loaded=None) -> None:
    """One AdamW step on random targets; images at `loaded` (default `size`), resized in by the model."""
    loaded = loaded or size
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimiser = torch.optim.AdamW(trainable, lr=1e-3)
    images = torch.randn(2, 3, *loaded)
    targets = {"activity": torch.tensor([0, 2]), "segmentation": torch.randint(0, CLASSES, (2, *loaded))}
    model.train()
    outputs = model(images)
    check_outputs(outputs, 2, loaded)
    losses = [nn.functional.cross_entropy(outputs[task], targets[task]) for task in BOTH]
    assert all(torch.isfinite(loss) for loss in losses)
    optimiser.zero_grad()
    sum(losses).backward()
    assert all(torch.isfinite(p.grad).all() for p in trainable if p.grad is not None)
    optimiser.step()
    assert all(torch.isfinite(p).all() for p in trainable)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainable))


@pytest.mark.parametrize("architecture", MIXTURES)
@pytest.mark.parametrize("encoder", ["dinov2", "endovit"])
def test_logits_per_task_and_a_finite_training_step(architecture, encoder):
    height, width = SIZES[encoder]
    # loaded at another size than input_size: resized in, logits back at the loaded size
    train_step(build(architecture, vit_config(encoder)), (height, width), loaded=(height + 4, width))


def test_dselect_k_with_one_expert_trains():
    config = vit_config()
    config.experts = ExpertsConfig(shared=1, selected=1)
    train_step(build("dselect_k", config), SIZES["dinov2"])


# Refusals


def refusal(architecture: str, *overrides: str) -> str:
    with pytest.raises(InputError) as error:
        load_config("endoarss-tiny", [f"model.architecture={architecture}", *overrides])
    return str(error.value)


@pytest.mark.parametrize("architecture", MIXTURES)
def test_refusals(architecture):
    tesla = refusal(architecture, "model.encoder.adapter.tesla=true")
    assert tesla == (
        f"model.encoder.adapter.tesla: {architecture} already gives each task its own gate over the experts; "
        "task-specific (TESLA) adapters go with hps"
    )
    layout = refusal(architecture, "model.encoder.feature_layout=release_view")
    assert layout == f"model.encoder.feature_layout: {architecture}'s token experts read the spatial feature map: set it to spatial"
    resnet = ("model.encoder.name=resnet50", "model.encoder.adapter.kind=none", "model.encoder.sma.placement=off")
    hidden = refusal(architecture, *resnet, "model.encoder.freeze=false", "model.experts.hidden=64")
    assert hidden == f"model.experts.hidden: the token experts' width is for ViT encoders: {architecture}'s experts on resnet50 are encoder copies"
    frozen = refusal(architecture, *resnet, "model.encoder.freeze=true")
    assert frozen == (
        f"model.encoder.freeze: {architecture}'s experts on resnet50 are copies of the encoder: "
        "frozen, they would be one network repeated (set it false)"
    )


def test_accepted_settings():
    for architecture in MIXTURES:
        load_config("hps-resnet50", [f"model.architecture={architecture}"])
        load_config("endoarss-tiny", [f"model.architecture={architecture}", "model.experts.hidden=32"])
        load_config("endoarss", [f"model.architecture={architecture}"])


def test_ple_refuses_an_encoder_it_cannot_split():
    config = vit_config()
    config.encoder.name = "test-unsplittable"
    with pytest.raises(InputError, match="ple runs the encoder stage by stage"):
        ARCHITECTURES.get("ple").check_config(config)
