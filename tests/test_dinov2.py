"""The DINOv2 encoder: official-format checkpoints load exactly, other sizes interpolate, layouts, config errors."""

from __future__ import annotations

import pytest
import torch

from baselines.config import AdapterConfig, EncoderConfig, SMAConfig
from mtlbench.checkpoints import read_state_dict
from baselines.models.dinov2 import build_dinov2_encoder
from baselines.models.dinov2_vit import (
    TRAINED_GRID,
    DinoVisionTransformer,
    detect_architecture,
    inspect_weights,
    read_dino_state_dict,
)
from mtlbench.errors import InputError

TASKS = ("activity", "segmentation")
TINY = {"depth": 2, "embed_dim": 96, "num_heads": 3}


def official_state_dict(depth: int = 12, dim: int = 384, registers: bool = False, seed: int = 0) -> dict:
    """Random values under the exact keys and shapes of the official files (written out, not derived from the model)."""
    shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, 1370, dim),
        "mask_token": (1, dim),
        "patch_embed.proj.weight": (dim, 3, 14, 14),
        "patch_embed.proj.bias": (dim,),
    }
    if registers:
        shapes["register_tokens"] = (1, 4, dim)
    for i in range(depth):
        block = f"blocks.{i}."
        shapes.update({
            block + "norm1.weight": (dim,),
            block + "norm1.bias": (dim,),
            block + "attn.qkv.weight": (3 * dim, dim),
            block + "attn.qkv.bias": (3 * dim,),
            block + "attn.proj.weight": (dim, dim),
            block + "attn.proj.bias": (dim,),
            block + "ls1.gamma": (dim,),
            block + "norm2.weight": (dim,),
            block + "norm2.bias": (dim,),
            block + "mlp.fc1.weight": (4 * dim, dim),
            block + "mlp.fc1.bias": (4 * dim,),
            block + "mlp.fc2.weight": (dim, 4 * dim),
            block + "mlp.fc2.bias": (dim,),
            block + "ls2.gamma": (dim,),
        })
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,)})
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in shapes.items()}


def save(state, path):
    torch.save(state, path)
    return path


def tiny_config(**changes) -> EncoderConfig:
    return EncoderConfig(**{"variant": "vits14", **TINY, **changes})


@pytest.fixture(scope="module", params=[False, True], ids=["vits14", "vits14_reg4"])
def official_file(request, tmp_path_factory):
    registers = request.param
    state = official_state_dict(registers=registers)
    path = save(state, tmp_path_factory.mktemp("weights") / "dinov2_vits14.pth")
    return path, state, ("vits14_reg4" if registers else "vits14")


def test_official_checkpoint_loads_exactly_and_runs_at_other_sizes(official_file):
    path, state, variant = official_file
    assert detect_architecture(state) == (variant, 12, 384, 6)
    encoder = build_dinov2_encoder(EncoderConfig(variant=variant, weights=str(path)), TASKS, (224, 224))
    assert encoder.weights_loaded and encoder.out_channels == 384 and not encoder.task_specific
    loaded = encoder.vit.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
    with torch.no_grad():
        assert encoder(torch.randn(2, 3, 224, 224)).shape == (2, 384, 16, 16)
        assert encoder(torch.randn(2, 3, 168, 308)).shape == (2, 384, 12, 22)
    report = inspect_weights(path)
    assert report["loads_exactly"] and report["architecture"]["variant"] == variant
    # ViT-S/14 by hand: 12 blocks of 1,775,232 (norms 2 x 768, qkv 443,520, proj 147,840, fc1 591,360,
    # fc2 590,208, layer scales 2 x 384) plus 753,792 outside them (patch embedding 588 x 384 + 384,
    # pos_embed 1,370 x 384, cls and mask tokens 2 x 384, final norm 768); registers add 4 x 384.
    # Tensors: 5 before the blocks + 14 per block + 2 of the final norm, plus the register tokens.
    assert report["tensors"] == (176 if variant.endswith("_reg4") else 175)
    assert report["parameters"] == (22_058_112 if variant.endswith("_reg4") else 22_056_576)
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []


def test_chunked_wrapped_and_prefixed_copies_load(tmp_path):
    state = official_state_dict()
    chunked = {key.replace("blocks.", f"blocks.{int(key.split('.')[1]) // 4}.", 1) if key.startswith("blocks.") else key: value for key, value in state.items()}
    assert "blocks.2.11.ls2.gamma" in chunked
    prefixed = {**{f"pretrained.{key}": value for key, value in state.items()}, "depth_head.conv.weight": torch.zeros(1)}
    files = {
        "chunked": (save({"teacher": chunked}, tmp_path / "chunked.pth"), ""),
        "prefixed": (save({"model": prefixed}, tmp_path / "prefixed.pth"), "pretrained."),
    }
    for path, prefix in files.values():
        assert read_dino_state_dict(path, prefix).keys() == state.keys()
        encoder = build_dinov2_encoder(EncoderConfig(variant="vits14", weights=str(path), weights_prefix=prefix), TASKS, (224, 224))
        assert torch.equal(encoder.vit.blocks[11].ls2.gamma, state["blocks.11.ls2.gamma"])


def test_adapted_encoder_loads_a_half_precision_file(tmp_path):
    state = {key: value.half() for key, value in official_state_dict(depth=2, dim=96).items()}
    path = save(state, tmp_path / "half.pth")
    plain = build_dinov2_encoder(tiny_config(weights=str(path)), TASKS, (56, 56))
    adapted = build_dinov2_encoder(tiny_config(weights=str(path), adapter=AdapterConfig(kind="dv-lora")), TASKS, (56, 56))
    assert adapted.vit.pos_embed.dtype == torch.float32 and not adapted.vit.blocks[0].mlp.fc1.lora_A.is_meta
    images = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert torch.allclose(adapted(images), plain(images), atol=1e-6)


def test_pos_embed_is_unchanged_at_the_training_size_and_resized_otherwise():
    for registers in (0, 4):
        vit = DinoVisionTransformer(depth=1, dim=24, heads=2, registers=registers)
        assert torch.equal(vit.interpolated_pos_embed((TRAINED_GRID, TRAINED_GRID)), vit.pos_embed)
        assert vit.interpolated_pos_embed((12, 22)).shape == (1, 1 + 12 * 22, 24)
        with torch.no_grad():
            vit.pos_embed.fill_(0.5)
        assert torch.allclose(vit.interpolated_pos_embed((12, 22)), torch.tensor(0.5), atol=1e-6)  # bicubic keeps constants
        with torch.no_grad():
            assert vit(torch.randn(1, 3, 518, 518)).shape == (1, 1 + registers + TRAINED_GRID**2, 24)


def test_plain_and_register_models_use_their_own_resize_rule():
    plain = DinoVisionTransformer(depth=0, dim=8, heads=1)
    with_registers = DinoVisionTransformer(depth=0, dim=8, heads=1, registers=4)
    with torch.no_grad():
        with_registers.pos_embed.copy_(plain.pos_embed)
    assert not torch.allclose(plain.interpolated_pos_embed((16, 16)), with_registers.interpolated_pos_embed((16, 16)))


def test_release_view_is_the_plain_view_of_the_tokens():
    torch.manual_seed(0)
    spatial = build_dinov2_encoder(tiny_config(), TASKS, (224, 224))
    torch.manual_seed(0)
    release = build_dinov2_encoder(tiny_config(feature_layout="release_view"), TASKS, (224, 224))
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        tokens = spatial.vit(images)[:, 1:]
        viewed = release(images)
    assert release.out_channels == 256 and viewed.shape == (2, 256, 16, 6)
    assert torch.equal(viewed, tokens.reshape(2, 256, 16, 6))


def test_random_init_and_freezing():
    frozen = build_dinov2_encoder(tiny_config(), TASKS, (224, 224))
    assert not frozen.weights_loaded
    assert not any(parameter.requires_grad for parameter in frozen.parameters())
    trainable = build_dinov2_encoder(tiny_config(freeze=False), TASKS, (224, 224))
    assert all(parameter.requires_grad for parameter in trainable.parameters())


def test_giant_uses_swiglu_and_is_detected(tmp_path):
    encoder = build_dinov2_encoder(EncoderConfig(variant="vitg14_reg4", depth=1, embed_dim=48, num_heads=2), TASKS, (56, 56))
    state = encoder.vit.state_dict()
    assert state["blocks.0.mlp.w12.weight"].shape == (2 * 128, 48) and state["blocks.0.mlp.w3.weight"].shape == (48, 128)
    assert detect_architecture(state) == ("custom_reg4", 1, 48, 1)
    with torch.no_grad():
        assert encoder(torch.randn(1, 3, 56, 56)).shape == (1, 48, 4, 4)
    assert inspect_weights(save(state, tmp_path / "giant.pth"))["loads_exactly"]


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda state: state.update({"blocks.0.attn.extra": torch.zeros(1)}), "blocks.0.attn.extra"),
        (lambda state: state.pop("blocks.1.ls2.gamma"), "blocks.1.ls2.gamma"),
        (lambda state: state.update({"pos_embed": torch.zeros(1, 1 + 16 * 16, 96)}), "pos_embed"),
    ],
    ids=["extra", "missing", "wrong-shape"],
)
def test_mismatched_files_are_refused_naming_the_key(tmp_path, change, named):
    state = official_state_dict(depth=2, dim=96)
    change(state)
    path = save(state, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=named) as raised:
        build_dinov2_encoder(tiny_config(weights=str(path)), TASKS, (224, 224))
    assert str(path) in str(raised.value)
    assert not inspect_weights(path)["loads_exactly"]


def test_unreadable_files_are_input_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    unsafe = save({"model": {"pos_embed": torch.zeros(1)}, "callback": print}, tmp_path / "unsafe.pth")
    not_a_dict = save([torch.zeros(1)], tmp_path / "list.pth")
    for path in (corrupt, unsafe, not_a_dict, tmp_path / "absent.pth"):
        with pytest.raises(InputError, match=path.name):
            inspect_weights(path)
    with pytest.raises(InputError, match="prefix"):
        read_state_dict(save(official_state_dict(depth=1, dim=12), tmp_path / "plain.pth"), prefix="pretrained.")


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"variant": "vitx14"}, "model.encoder.variant"),
        ({"num_heads": 5}, "model.encoder"),
        ({"sma": {"placement": "tokens", "groups": 7}}, "model.encoder.sma.groups"),
    ],
)
def test_settings_the_encoder_cannot_build_are_input_errors(changes, where):
    changes = {key: SMAConfig(**value) if key == "sma" else value for key, value in changes.items()}
    with pytest.raises(InputError) as raised:
        build_dinov2_encoder(tiny_config(**changes), TASKS, (224, 224))
    assert raised.value.where == where


@pytest.mark.parametrize(
    "section, settings, where",
    [
        (EncoderConfig, {"feature_layout": "sideways"}, "model.encoder.feature_layout"),
        (SMAConfig, {"placement": "everywhere"}, "model.encoder.sma.placement"),
    ],
)
def test_unknown_choices_are_refused_when_the_configuration_is_made(section, settings, where):
    with pytest.raises(InputError) as raised:
        section(**settings)
    assert raised.value.where == where


def test_input_size_must_be_multiples_of_the_patch():
    with pytest.raises(InputError, match="multiples of 14"):
        build_dinov2_encoder(tiny_config(), TASKS, (224, 225))


def test_weights_inspect_command(tmp_path):
    import subprocess
    import sys

    exact = save(official_state_dict(registers=True), tmp_path / "dinov2_vits14_reg4_pretrain.pth")
    shown = subprocess.run([sys.executable, "-m", "mtlbench", "weights", "inspect", str(exact)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "vits14_reg4" in shown.stdout and "loads exactly" in shown.stdout
    extra = official_state_dict()
    extra["head.weight"] = torch.zeros(1000, 384)
    broken = subprocess.run(
        [sys.executable, "-m", "mtlbench", "weights", "inspect", str(save(extra, tmp_path / "extra.pth"))],
        capture_output=True, text=True,
    )
    assert broken.returncode == 1 and "unexpected head.weight" in broken.stdout
    assert broken.stderr.strip().startswith("error: ") and "does not load exactly" in broken.stderr
