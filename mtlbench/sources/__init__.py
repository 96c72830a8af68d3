"""Readers of raw source data sets: discovery of files and decoding of their labels."""
