"""The table of corruptions: each family module registers its functions here, with their parameters.

A corruption function takes a float32 (H, W, 3) image in [0, 1], a `Context` and its parameters for
one severity as keyword arguments, and returns a float image of the same shape. Clipping and
rounding back to uint8 happen once, in `mtlbench.corruptions.corrupt`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtlbench.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)
# The release corrupts 256x256 images, so every length in its tables is in pixels of that size.
REFERENCE_SIZE = 256


@dataclass(frozen=True)
class Context:
    rng: np.random.Generator  # the only source of randomness a corruption may use
    image_scale: float  # pixels of this image per pixel of the 256-px reference


@dataclass(frozen=True)
class Corruption:
    name: str
    function: Callable[..., np.ndarray]
    columns: dict[str, tuple]  # parameter name -> its value at severities 1..5 (None: unused there)
    spatial: tuple[str, ...]  # the parameters that are lengths, multiplied by the image scale
    note: str

    def parameters(self, severity: int, image_scale: float) -> dict[str, Any]:
        chosen = {name: column[severity - 1] for name, column in self.columns.items()}
        return {
            name: value * image_scale if name in self.spatial and value is not None else value
            for name, value in chosen.items()
        }

    def describe(self) -> dict:
        described: dict[str, Any] = {
            "severities": {
                str(severity): {name: _plain(column[severity - 1]) for name, column in self.columns.items()}
                for severity in SEVERITIES
            }
        }
        if self.spatial:
            described["scaled_by_min_side_over_256"] = list(self.spatial)
        if self.note:
            described["note"] = self.note
        return described


CORRUPTIONS: Registry[Corruption] = Registry(
    "corruption",
    modules=tuple(f"mtlbench.corruptions.{family}" for family in ("noise", "blur", "digital", "weather", "bleeding")),
)


def register(name: str, *, spatial: tuple[str, ...] = (), note: str = "", **columns) -> Callable:
    """Decorator adding a corruption. A tuple column gives one value per severity; any other value
    is the same at every severity."""
    per_severity = {
        column: value if isinstance(value, tuple) else (value,) * len(SEVERITIES) for column, value in columns.items()
    }
    wrong = [column for column, values in per_severity.items() if len(values) != len(SEVERITIES)]
    if wrong or not set(spatial) <= set(columns):
        raise ValueError(f"corruption {name!r}: bad columns {wrong} / spatial {spatial}")

    def add(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        CORRUPTIONS.add(name, Corruption(name, function, per_severity, spatial, note))
        return function

    return add


def _plain(value):
    """A parameter value as JSON writes it back: tuples become lists."""
    return list(value) if isinstance(value, tuple) else value
