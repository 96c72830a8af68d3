"""Task heads and the hps / single_task architectures, mostly on tiny stand-in encoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import baselines.models.resnet  # noqa: F401  (registers resnet50)
from baselines.config import EncoderConfig, ModelConfig
from baselines.models.heads import ASPPHead, ClassificationHead, build_task_heads
from baselines.models.hps import build_hps
from baselines.models.registries import ARCHITECTURES, ENCODERS
from mtlbench.errors import InputError

CLASSES, ACTIVITIES = 5, 3
BOTH = ("activity", "segmentation")


class TinyEncoder(nn.Module):
    """A frozen stem and a trainable conv, output stride 8, like a ViT with trainable extras."""

    out_channels = 8
    task_specific = False

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 8, stride=8).requires_grad_(False)
        self.mix = nn.Conv2d(4, self.out_channels, 1)
        self.calls: list[str | None] = []

    def forward(self, images, task=None):
        self.calls.append(task)
        return self.features(self.stem(images), task)

    def features(self, stem, task):
        return self.mix(stem)


class TinyTaskSpecificEncoder(TinyEncoder):
    """TESLA-like: a shared A and one B per task, chosen by the task argument."""

    task_specific = True

    def __init__(self, tasks):
        super().__init__()
        self.lora_A = nn.Parameter(torch.randn(2, 4))
        self.lora_B = nn.ParameterDict({task: nn.Parameter(torch.randn(self.out_channels, 2)) for task in tasks})

    def features(self, stem, task):
        return self.mix(stem) + torch.einsum("oc,bchw->bohw", self.lora_B[task] @ self.lora_A, stem)


ENCODERS.register("test-tiny")(lambda config, tasks, input_size: TinyEncoder())
ENCODERS.register("test-tiny-task-specific")(lambda config, tasks, input_size: TinyTaskSpecificEncoder(tasks))


def model_config(encoder: str = "test-tiny") -> ModelConfig:
    return ModelConfig(encoder=EncoderConfig(name=encoder), head_channels=16, aspp_rates=(1, 2, 3))


def build(architecture: str, tasks=BOTH, encoder: str = "test-tiny"):
    torch.manual_seed(0)
    return ARCHITECTURES.get(architecture)(model_config(encoder), tasks, CLASSES, ACTIVITIES, (64, 64))


def images(batch: int = 2, height: int = 64, width: int = 64) -> torch.Tensor:
    return torch.randn(batch, 3, height, width)


# Heads


def test_aspp_logits_are_upsampled_to_the_output_size():
    head = ASPPHead(8, CLASSES, channels=16).eval()
    assert head(torch.randn(2, 8, 8, 6), (64, 48)).shape == (2, CLASSES, 64, 48)


def test_aspp_trains_with_batch_1():
    head = ASPPHead(8, CLASSES, channels=16).train()
    logits = head(torch.randn(1, 8, 8, 8), (32, 32))
    logits.sum().backward()
    assert logits.shape == (1, CLASSES, 32, 32)
    assert all(parameter.grad is not None for parameter in head.parameters())


def test_aspp_structure_follows_deeplab():
    head = ASPPHead(8, CLASSES, channels=16, rates=(12, 24, 36))
    dilations = [branch[0].dilation for branch in head.branches[1:4]]
    assert dilations == [(12, 12), (24, 24), (36, 36)]
    assert len(head.branches) == 5  # 1x1, three atrous, image pooling
    assert head.project[0][0].in_channels == 5 * 16
    assert head.project[1].p == 0.5


def test_classification_head_shape():
    head = ClassificationHead(8, ACTIVITIES, channels=16).train()
    assert head(torch.randn(1, 8, 8, 8)).shape == (1, ACTIVITIES)
    assert head(torch.randn(2, 8, 4, 6), (32, 48)).shape == (2, ACTIVITIES)


def test_heads_follow_the_model_config():
    heads = build_task_heads(ModelConfig(head_channels=16, aspp_rates=(2, 4, 6), dropout=0.1), BOTH, 8, CLASSES, ACTIVITIES)
    assert isinstance(heads["activity"], ClassificationHead) and heads["activity"].linear.out_features == ACTIVITIES
    segmentation = heads["segmentation"]
    assert isinstance(segmentation, ASPPHead) and segmentation.classifier.out_channels == CLASSES
    assert segmentation.branches[3][0].dilation == (6, 6) and segmentation.project[1].p == 0.1


@pytest.mark.parametrize("tasks", [(), ("depth",), ("activity", "activity")], ids=["none", "unknown", "repeated"])
@pytest.mark.parametrize("architecture", ["hps", "single_task"])
def test_bad_task_lists_are_input_errors(architecture, tasks):
    with pytest.raises(InputError, match="tasks"):
        build(architecture, tasks)


# Hard parameter sharing


@pytest.mark.parametrize("architecture", ["hps", "single_task"])
def test_forward_returns_logits_per_task(architecture):
    outputs = build(architecture)(images(2, 64, 48))
    assert set(outputs) == set(BOTH)
    assert outputs["activity"].shape == (2, ACTIVITIES)
    assert outputs["segmentation"].shape == (2, CLASSES, 64, 48)


@pytest.mark.parametrize("architecture", ["hps", "single_task"])
@pytest.mark.parametrize("task", BOTH)
def test_a_single_task_works(architecture, task):
    model = build(architecture, (task,))
    assert model.tasks == (task,)
    assert set(model(images())) == {task}


def test_hps_runs_a_shared_encoder_once():
    model = build("hps")
    model(images())
    assert model.encoder.calls == [None]
    assert set(model.heads) == set(BOTH)


def test_hps_shared_parameters_are_the_trainable_encoder_parameters():
    model = build("hps")
    shared = model.shared_parameters()
    assert [id(p) for p in shared] == [id(model.encoder.mix.weight), id(model.encoder.mix.bias)]


def test_hps_runs_a_task_specific_encoder_once_per_task():
    model = build("hps", encoder="test-tiny-task-specific")
    outputs = model(images())
    assert model.encoder.calls == list(BOTH)
    assert outputs["segmentation"].shape == (2, CLASSES, 64, 64)
    shared = {id(p) for p in model.shared_parameters()}
    assert id(model.encoder.lora_A) in shared
    assert not shared & {id(p) for p in model.encoder.lora_B.values()}  # per-task B's are not shared
    assert id(model.encoder.mix.weight) in shared and id(model.encoder.stem.weight) not in shared


def test_hps_with_resnet50():
    config = ModelConfig(encoder=EncoderConfig(name="resnet50", freeze=False))
    model = build_hps(config, BOTH, CLASSES, ACTIVITIES, (64, 64)).eval()
    with torch.no_grad():
        outputs = model(images(1))
    assert outputs["activity"].shape == (1, ACTIVITIES)
    assert outputs["segmentation"].shape == (1, CLASSES, 64, 64)
    assert len(model.shared_parameters()) == len(list(model.encoder.parameters()))


# Single-task networks


def test_single_task_builds_independent_networks():
    model = build("single_task")
    encoders = [model.networks[task].encoder for task in BOTH]
    assert encoders[0] is not encoders[1]
    assert model.shared_parameters() == []
    model(images())
    assert [encoder.calls for encoder in encoders] == [[None], [None]]


def test_single_task_gradients_stay_in_their_network():
    model = build("single_task")
    model(images())["activity"].sum().backward()
    activity, segmentation = model.networks["activity"], model.networks["segmentation"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in activity.parameters() if p.requires_grad)
    assert all(p.grad is None for p in segmentation.parameters())
