"""Registries of encoders, architectures and adapters; each implementation file registers itself by name.

Encoder factory:      (config: EncoderConfig, tasks: tuple[str, ...], input_size: (H, W)) -> encoder module
Architecture factory: (config: ModelConfig, tasks, num_classes: int, num_activities: int, input_size) -> model
Adapter factory:      (base: nn.Linear, config: AdapterConfig, tasks: tuple[str, ...]) -> adapted nn.Linear

Architectures register through `register_architecture`, which also records what the
configuration checks before anything is built: a one-line summary, whether the model can cut one
shared representation (for the weighting methods that balance its gradients), and which
encoder settings the architecture refuses.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from mtlbench.registry import Registry

# The configuration module imports this one; its ModelConfig is what these callables receive.
ModelConfig = Any

ENCODERS = Registry("encoder", modules=("baselines.models.dinov2", "baselines.models.resnet", "baselines.models.endovit"))
ARCHITECTURES = Registry(
    "architecture",
    modules=tuple(
        f"baselines.models.{module}"
        for module in ("hps", "single_task", "cross_stitch", "mtan", "mmoe", "cgc", "ple", "dselect_k")
    ),
)
ADAPTERS = Registry("adapter", modules=("baselines.models.adapters",))

NO_SHARED_REPRESENTATION = "its heads read no single shared representation"


def register_architecture(
    name: str,
    summary: str,
    representation: Callable[[ModelConfig], str | None] = lambda config: NO_SHARED_REPRESENTATION,
    check: Callable[[ModelConfig], None] = lambda config: None,
):
    """Decorator registering an architecture factory. `representation(config)` is None when the
    model built from `config` can cut its shared representation, else why it cannot; `check(config)`
    raises InputError for settings the architecture cannot build. The configuration calls `check`
    when it is made, and the registered factory calls it again before building, so a model
    configuration made by hand is checked too."""

    def add(factory):
        @functools.wraps(factory)
        def checked(config, *arguments):
            check(config)
            return factory(config, *arguments)

        checked.summary = summary
        checked.representation_refusal = representation
        checked.check_config = check
        ARCHITECTURES.add(name, checked)
        return checked

    return add
