"""Dataset builders, registered by name in BUILDERS: each turns raw sources into a dataset folder.

A builder is `build(<its inputs>, out, *, options: BuildOptions)`; see mtlbench/builders/options.py
for what all builders share.
"""

from __future__ import annotations

from typing import Callable

from mtlbench.registry import Registry

BUILDERS: Registry[Callable] = Registry(
    "builder",
    modules=(
        "mtlbench.builders.mtlendovis",
        "mtlbench.builders.mtlesd",
        "mtlbench.builders.endoarss_release",
        "mtlbench.builders.mtlendovis_gen",
        "mtlbench.builders.ent_fess",
        "mtlbench.builders.pitvqa",
    ),
)
