"""Datasets, transforms and samplers; each registers into mmdet's registries on import."""
from . import samplers, transforms  # noqa: F401
from .vg_h5 import STATISTICS_KEYS, VG_CORRUPTED_IMAGE_IDS, VGFormatError, VGH5Dataset

__all__ = ['STATISTICS_KEYS', 'VG_CORRUPTED_IMAGE_IDS', 'VGFormatError', 'VGH5Dataset']
