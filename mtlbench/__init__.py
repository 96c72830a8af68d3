"""mtlbench: dataset toolkit and benchmark suite for multi-task learning in endoscopic surgery."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_dataset", "read_dataset"]


def __getattr__(name: str):
    # torch is imported only when the loader is actually used, so `mtlbench info` stays fast.
    if name == "load_dataset":
        from mtlbench.dataset.loader import load_dataset

        return load_dataset
    if name == "read_dataset":
        from mtlbench.dataset.manifest import read_dataset

        return read_dataset
    raise AttributeError(f"module 'mtlbench' has no attribute {name!r}")
