"""Encoders and architectures, registered by name (registries.py); `build_model` picks by config."""

from __future__ import annotations

from baselines.config import ModelConfig
from baselines.models import dinov2, hps, resnet, single_task  # noqa: F401  (each registers itself)
from baselines.models.registries import ARCHITECTURES


def build_model(config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]):
    return ARCHITECTURES.get(config.architecture)(config, tasks, num_classes, num_activities, input_size)
