"""What `run-baseline --list` shows: the presets grouped by the tasks they train, the
architectures and the weighting methods, each with one line."""

from __future__ import annotations

from dataclasses import dataclass

from baselines.config import load_config, preset_description, preset_names
from baselines.models.registries import ARCHITECTURES
from baselines.vl.registry import VL_ARCHITECTURES
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import PARAMETERS, REPRESENTATION

PRESET_GROUPS = {
    "endoarss": "EndoARSS: activity recognition + scene segmentation (MTLEndovis, MTLESD)",
    "vision-language": "Vision-language: landmarks, descriptions, reports (ENT-FESS, PitVQA)",
}
BALANCES = {(): "losses", (PARAMETERS,): "shared parameters", (REPRESENTATION,): "representation"}


@dataclass(frozen=True)
class Entry:
    name: str
    summary: str
    detail: str = ""  # the group of a preset's family, or what a weighting method balances


def presets() -> list[Entry]:
    """Every preset with its group, EndoARSS first, each group in name order."""
    entries = []
    for name in preset_names():
        family = "endoarss" if load_config(name).model.architecture in ARCHITECTURES else "vision-language"
        entries.append(Entry(name, preset_description(name), PRESET_GROUPS[family]))
    order = list(PRESET_GROUPS.values())
    return sorted(entries, key=lambda entry: (order.index(entry.detail), entry.name))


def architectures() -> list[Entry]:
    return [
        *(Entry(name, ARCHITECTURES.get(name).summary, PRESET_GROUPS["endoarss"]) for name in ARCHITECTURES.names()),
        *(Entry(name, VL_ARCHITECTURES.get(name).summary, PRESET_GROUPS["vision-language"]) for name in VL_ARCHITECTURES.names()),
    ]


def weightings() -> list[Entry]:
    """Each method with what it balances: the losses, the shared parameters' gradients, or those of the
    representation (first the method's default, then the alternative `weighting.gradients` allows)."""
    entries = []
    for name in WEIGHTINGS.names():
        method = WEIGHTINGS.get(name)
        balances = BALANCES.get(method.GRADIENTS) or " or ".join(BALANCES[(source,)] for source in method.GRADIENTS)
        entries.append(Entry(name, method.SUMMARY, balances))
    return entries
