"""Datasets, transforms and samplers; each registers into mmdet's registries on import."""
from . import samplers, transforms  # noqa: F401
from .sgg_concat_dataset import SGGConcatDataset, combine_statistics, source_names
from .vg_format import STATISTICS_KEYS, VG_CORRUPTED_IMAGE_IDS, VGFormatError
from .vg_h5 import VGH5Dataset

__all__ = ['SGGConcatDataset', 'combine_statistics', 'source_names', 'STATISTICS_KEYS', 'VG_CORRUPTED_IMAGE_IDS',
           'VGFormatError', 'VGH5Dataset']
