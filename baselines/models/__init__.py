"""Encoders, adapters and architectures, registered by name (registries.py); `build_model` picks by config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baselines.models.registries import ARCHITECTURES

if TYPE_CHECKING:  # the configuration module names these registries' entries as its allowed values
    from baselines.config import ModelConfig


def build_model(config: ModelConfig, tasks: tuple[str, ...], num_classes: int, num_activities: int, input_size: tuple[int, int]):
    return ARCHITECTURES.get(config.architecture, "model.architecture")(config, tasks, num_classes, num_activities, input_size)
