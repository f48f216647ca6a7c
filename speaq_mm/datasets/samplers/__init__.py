"""Batch samplers for multi-source training (see docs/multi_dataset.md) and resumable aspect-ratio batches."""
from .aspect_ratio_batch_sampler import SGGAspectRatioBatchSampler
from .ratio_batch_sampler import SGGRatioBatchSampler, largest_remainder_counts, split_over_ranks

__all__ = [
    'SGGRatioBatchSampler', 'SGGAspectRatioBatchSampler', 'largest_remainder_counts', 'split_over_ranks'
]
