"""Task weighting methods, one per file, each registered by name in WEIGHTINGS (LibMTL style).

The trainer builds one with `build_weighting(config.weighting, config.tasks)` and calls its
`backward(losses, shared)` instead of `loss.backward()`; see base.Weighting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from baselines.weighting.registry import WEIGHTINGS

if TYPE_CHECKING:  # the configuration module names this registry's entries as its allowed values
    from baselines.config import WeightingConfig
    from baselines.weighting.base import Weighting


def build_weighting(config: WeightingConfig, tasks: tuple[str, ...]) -> Weighting:
    return WEIGHTINGS.get(config.name, "weighting.name")(tuple(tasks), config)
