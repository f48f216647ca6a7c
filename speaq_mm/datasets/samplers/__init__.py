"""Batch samplers for multi-source training (see docs/multi_dataset.md)."""
