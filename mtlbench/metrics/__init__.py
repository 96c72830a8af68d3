"""Metric families as numpy-in / dict-out functions, usable without files (docs/metrics.md)."""
