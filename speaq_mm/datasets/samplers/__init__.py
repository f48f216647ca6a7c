"""Batch samplers for multi-source training (see docs/multi_dataset.md)."""
from .ratio_batch_sampler import RatioBatchSampler, largest_remainder_counts, split_over_ranks
from .sgg_concat_dataset import SGGConcatDataset, combine_statistics, source_names

__all__ = [
    'RatioBatchSampler', 'largest_remainder_counts', 'split_over_ranks',
    'SGGConcatDataset', 'combine_statistics', 'source_names'
]
