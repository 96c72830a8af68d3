"""Tiny builds of the stage-wise architectures (cross_stitch, mtan) that their tests share."""

from __future__ import annotations

import torch

from baselines.config import load_config
from baselines.models.registries import ARCHITECTURES

CLASSES, ACTIVITIES = 5, 3
BOTH = ("activity", "segmentation")


def settings(architecture: str) -> tuple[list[str], list[str], list[str]]:
    """--set lists for a small resnet50 (with hps-resnet50), a tiny dinov2 and a tiny endovit (with endoarss-tiny)."""
    resnet = [f"model.architecture={architecture}", "model.head_channels=8", "model.aspp_rates=[1,2,3]"]
    tiny = [f"model.architecture={architecture}", "model.encoder.embed_dim=48", "model.encoder.num_heads=2", "model.head_channels=8"]
    endovit = [
        *tiny, "model.encoder.name=endovit", "model.encoder.adapter.kind=none", "model.encoder.sma.placement=off",
        "model.encoder.depth=2", "model.encoder.freeze=false",
    ]
    return resnet, tiny, endovit


def build(architecture: str, preset: str, overrides: list[str], input_size, tasks=BOTH):
    torch.manual_seed(0)
    config = load_config(preset, overrides).model
    return ARCHITECTURES.get(architecture)(config, tasks, CLASSES, ACTIVITIES, input_size)


def tiny_dinov2(architecture: str, *extra: str):
    return build(architecture, "endoarss-tiny", [*settings(architecture)[1], *extra], (56, 70))


def check_outputs(model, images):
    outputs = model(images)
    assert outputs["activity"].shape == (len(images), ACTIVITIES)
    assert outputs["segmentation"].shape == (len(images), CLASSES, *images.shape[-2:])
    return outputs


def names_of(model, parameters):
    ids = {id(p) for p in parameters}
    return {name for name, p in model.named_parameters() if id(p) in ids}
