"""Registries of encoders, architectures and adapters; each implementation file registers itself by name.

Encoder factory:      (config: EncoderConfig, tasks: tuple[str, ...], input_size: (H, W)) -> encoder module
Architecture factory: (config: ModelConfig, tasks, num_classes: int, num_activities: int, input_size) -> model
Adapter factory:      (base: nn.Linear, config: AdapterConfig, tasks: tuple[str, ...]) -> adapted nn.Linear
"""

from mtlbench.registry import Registry

ENCODERS = Registry("encoder", modules=("baselines.models.dinov2", "baselines.models.resnet", "baselines.models.endovit"))
ARCHITECTURES = Registry("architecture", modules=("baselines.models.hps", "baselines.models.single_task"))
ADAPTERS = Registry("adapter", modules=("baselines.models.adapters",))
