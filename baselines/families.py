"""Which run family an architecture belongs to: its registry decides (kept apart from family.py,
which the families import)."""

from __future__ import annotations

from baselines.endoarss_family import EndoARSSFamily
from baselines.family import Family
from baselines.models.registries import ARCHITECTURES
from baselines.vl.family import VisionLanguageFamily
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.progress import ProgressFn, silent


def make_family(config, card: DatasetCard, progress: ProgressFn = silent) -> Family:
    """`progress` shows work the family does before training (building a prepared frame cache)."""
    if config.model.architecture in ARCHITECTURES:
        return EndoARSSFamily(config, card, progress)
    return VisionLanguageFamily(config, card)
