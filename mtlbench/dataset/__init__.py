"""The unified mtlbench dataset format: one folder with dataset.json, samples.csv, images/, masks/."""
