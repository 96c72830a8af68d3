"""mtlbench: dataset toolkit and benchmark suite for multi-task learning in endoscopic surgery."""

import importlib

__version__ = "0.1.0"

# Imported on first use, so that `mtlbench info` does not pay for torch or the metrics.
_LAZY = {
    "load_dataset": "mtlbench.dataset.loader",
    "read_dataset": "mtlbench.dataset.manifest",
    "evaluate": "mtlbench.evaluation.evaluate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtlbench' has no attribute {name!r}")
