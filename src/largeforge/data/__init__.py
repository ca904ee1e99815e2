"""Datasets: formats, loaders, validation, content-addressed versions, preview and synthetic data."""
