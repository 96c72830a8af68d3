"""Task weighting methods, one per file, each registered by name in WEIGHTINGS (LibMTL style).

The trainer builds one with `build_weighting(config.weighting, config.tasks)` and calls its
`backward(losses, shared)` instead of `loss.backward()`; see base.Weighting.
"""

from __future__ import annotations

from baselines.config import WeightingConfig
from baselines.registry import Registry

WEIGHTINGS = Registry("weighting")

# Imported after WEIGHTINGS exists: each module registers its method in it.
from baselines.weighting import db_mtl, dwa, ew, stch, uw  # noqa: F401
from baselines.weighting.base import Weighting


def build_weighting(config: WeightingConfig, tasks: tuple[str, ...]) -> Weighting:
    return WEIGHTINGS.get(config.name)(tuple(tasks), config)
