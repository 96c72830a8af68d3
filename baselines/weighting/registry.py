"""The weighting methods, by name (one file each): `WEIGHTINGS.get(name)(tasks, config)` -> Weighting."""

from mtlbench.registry import Registry

WEIGHTINGS = Registry(
    "weighting method",
    modules=tuple(
        f"baselines.weighting.{module}"
        for module in (
            "ew", "uw", "dwa", "db_mtl", "stch", "gradnorm", "mgda", "gls", "rlw", "pcgrad", "gradvac", "graddrop",
            "imtl", "cagrad", "nash_mtl", "moco", "aligned_mtl", "famo", "fairgrad", "excess_mtl", "upgrad",
        )
    ),
)
