"""Dataset builders, registered by name: each turns raw sources into a dataset folder."""

from __future__ import annotations

import importlib
from typing import Callable

# name -> "module:function"; imported on use so one builder's dependencies never slow another.
BUILDERS: dict[str, str] = {
    "mtlendovis": "mtlbench.builders.mtlendovis:build_mtlendovis",
    "mtlesd-coco": "mtlbench.builders.mtlesd:build_mtlesd_from_coco",
    "mtlesd-release": "mtlbench.builders.mtlesd:build_mtlesd_from_release",
    "endoarss-release": "mtlbench.builders.endoarss_release:build_from_release",
    "mtlendovis-gen": "mtlbench.builders.mtlendovis_gen:build_mtlendovis_gen",
}


def get_builder(name: str) -> Callable:
    if name not in BUILDERS:
        raise KeyError(f"unknown builder {name!r}; known: {', '.join(sorted(BUILDERS))}")
    module_name, function_name = BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)
