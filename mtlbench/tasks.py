"""The tasks a dataset, a submission and a model can carry, named once for the whole package."""

from __future__ import annotations

TASKS = ("activity", "segmentation")
