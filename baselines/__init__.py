"""Reference runners: configuration, data, training, models and weighting methods (docs/baselines.md)."""
