"""Datasets, transforms and samplers; each registers into mmdet's registries on import."""
from . import samplers  # noqa: F401
