"""Batch samplers for multi-source training (see docs/multi_dataset.md) and resumable aspect-ratio batches."""
from .aspect_ratio_batch_sampler import SGGAspectRatioBatchSampler
from .ratio_batch_sampler import RatioBatchSampler, largest_remainder_counts, split_over_ranks
from .sgg_concat_dataset import SGGConcatDataset, combine_statistics, source_names

__all__ = [
    'RatioBatchSampler', 'SGGAspectRatioBatchSampler', 'largest_remainder_counts', 'split_over_ranks',
    'SGGConcatDataset', 'combine_statistics', 'source_names'
]
