"""Registries of encoders and architectures; each implementation file registers itself by name.

Encoder factory:      (config: EncoderConfig, tasks: tuple[str, ...], input_size: (H, W)) -> encoder module
Architecture factory: (config: ModelConfig, tasks, num_classes: int, num_activities: int, input_size) -> model
"""

from baselines.registry import Registry

ENCODERS = Registry("encoder")
ARCHITECTURES = Registry("architecture")
