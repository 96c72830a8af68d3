"""Scoring a predictions folder against a dataset split (docs/format-submission.md, docs/metrics.md)."""
