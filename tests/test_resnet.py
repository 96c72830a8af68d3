"""The dilated ResNet-50 encoder: torchvision's architecture and names, strict weight loading, freezing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from baselines.config import AdapterConfig, EncoderConfig
from baselines.models.resnet import build_resnet50_encoder
from mtlbench.errors import InputError

BLOCKS = (3, 4, 6, 3)


def expected_state_keys() -> set[str]:
    """torchvision resnet50's state_dict keys without fc, written from the architecture."""

    def batch_norm(prefix: str) -> list[str]:
        return [f"{prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]

    keys = ["conv1.weight", *batch_norm("bn1")]
    for layer, blocks in enumerate(BLOCKS, start=1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            for index in (1, 2, 3):
                keys += [f"{prefix}.conv{index}.weight", *batch_norm(f"{prefix}.bn{index}")]
            if block == 0:
                keys += [f"{prefix}.downsample.0.weight", *batch_norm(f"{prefix}.downsample.1")]
    return set(keys)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return build_resnet50_encoder(EncoderConfig(name="resnet50", freeze=False), ("activity", "segmentation"), (64, 64))


@pytest.fixture(scope="module")
def saved_weights(encoder, tmp_path_factory):
    """The encoder's state_dict as torchvision saves it, with the ImageNet classifier."""
    state = {**encoder.state_dict(), "fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.save(state, path)
    return path, state


def load(path, **settings):
    return build_resnet50_encoder(EncoderConfig(name="resnet50", weights=str(path), **settings), ("activity",), (64, 64))


def test_output_stride_8_and_attributes(encoder):
    encoder.eval()
    with torch.no_grad():
        features = encoder(torch.randn(2, 3, 64, 48), task="activity")
    assert features.shape == (2, 2048, 8, 6)
    assert encoder.out_channels == 2048
    assert encoder.task_specific is False
    assert encoder.weights_loaded is False


def test_dilation_as_torchvision_deeplab(encoder):
    assert encoder.layer2[0].conv2.stride == (2, 2)
    for layer, dilation in ((encoder.layer3, 2), (encoder.layer4, 4)):
        assert layer[0].conv2.stride == (1, 1) and layer[0].downsample[0].stride == (1, 1)
        assert layer[0].conv2.dilation == (dilation // 2,) * 2
        assert all(block.conv2.dilation == (dilation,) * 2 for block in layer[1:])


def test_parameter_count_is_torchvision_resnet50_without_fc(encoder):
    count = sum(parameter.numel() for parameter in encoder.parameters())
    assert count == 25_557_032 - (2048 * 1000 + 1000)  # torchvision's resnet50 less its fc classifier


def test_state_dict_keys_are_torchvision_names(encoder):
    assert set(encoder.state_dict()) == expected_state_keys()


def test_torchvision_file_with_fc_loads(saved_weights):
    path, state = saved_weights
    loaded = load(path)
    assert loaded.weights_loaded is True
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_prefix_is_stripped(saved_weights, tmp_path):
    _, state = saved_weights
    path = tmp_path / "prefixed.pth"
    torch.save({f"backbone.{key}": value for key, value in state.items()}, path)
    loaded = load(path, weights_prefix="backbone.")
    assert loaded.weights_loaded and all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items())


def test_file_without_batch_counters_loads(saved_weights, tmp_path):
    _, state = saved_weights
    path = tmp_path / "old.pth"
    torch.save({key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}, path)
    loaded = load(path)
    assert loaded.weights_loaded
    assert all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items() if not key.endswith("num_batches_tracked"))


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda state: state.pop("layer2.0.conv1.weight"), "layer2.0.conv1.weight"),
        (lambda state: state.update({"layer4.2.bn3.weight": torch.ones(1024)}), "layer4.2.bn3.weight: file (1024,) vs model (2048,)"),
        (lambda state: state.update({"head.weight": torch.ones(1)}), "head.weight"),
    ],
    ids=["missing", "wrong-shape", "unexpected"],
)
def test_mismatched_file_is_an_input_error_naming_key_and_file(saved_weights, tmp_path, change, named):
    state = dict(saved_weights[1])
    change(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as error:
        load(path)
    assert error.value.where == str(path)
    assert named in error.value.problem


def test_many_missing_keys_are_listed_up_to_ten(tmp_path):
    path = tmp_path / "few.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(InputError) as error:
        load(path)
    listed, rest = error.value.problem.split("missing: ")[1].split("; and ")
    assert len(listed.split(", ")) == 10 and rest == "254 more"  # 264 keys without the batch counters


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a readable PyTorch file, truncated or corrupt (EOFError)"),
        (b"not a checkpoint" * 8, "not a file the safe (weights-only) loader accepts: corrupt, or it holds objects other than tensors"),
    ],
    ids=["empty", "garbage"],
)
def test_unreadable_file_is_an_input_error(tmp_path, content, problem):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load(path)
    assert error.value.where == str(path) and error.value.problem == problem


def test_missing_file_and_non_state_dict_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "absent.pth")
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(InputError, match="not a state dict"):
        load(path)


def test_freeze_flag():
    frozen = build_resnet50_encoder(EncoderConfig(name="resnet50", freeze=True), ("activity",), (32, 32))
    assert not any(parameter.requires_grad for parameter in frozen.parameters())
    frozen.train()
    statistics = frozen.bn1.running_mean.clone()
    frozen(torch.randn(2, 3, 32, 32))
    assert torch.equal(frozen.bn1.running_mean, statistics)  # BatchNorm statistics are frozen too


def test_trainable_when_not_frozen(encoder):
    assert all(parameter.requires_grad for parameter in encoder.parameters())
    encoder.train()
    assert encoder.training and encoder.bn1.training


def test_vit_only_settings_are_refused():
    config = dataclasses.replace(EncoderConfig(name="resnet50"), adapter=AdapterConfig(kind="lora"))
    with pytest.raises(InputError, match="adapter.kind"):
        build_resnet50_encoder(config, ("activity",), (64, 64))
