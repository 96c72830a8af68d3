"""Sweeps: a grid of presets, overrides, datasets and seeds, run here or through submitit, ending
with the leaderboard entries of its finished cells (docs/sweeps.md)."""
