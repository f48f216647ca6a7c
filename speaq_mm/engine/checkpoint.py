"""Checkpoint loading that works on torch >= 2.6.

mmengine 0.10.7 calls ``torch.load(filename)`` without ``weights_only``; since torch 2.6 that defaults to
``True`` and rejects the ``HistoryBuffer``/numpy objects mmengine itself stores in every checkpoint, so
``--resume`` and ``load_from`` of our own checkpoints fail. The fix upstream (mmengine#1670) is not in a
release. Importing ``speaq_mm`` re-registers the local-file loader with ``weights_only=False``; checkpoints
are files the user chose to load, the same trust mmengine placed in them before torch 2.6.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename, map_location=None):
    """Load a checkpoint from a local path, allowing the Python objects mmengine stores in it."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_checkpoint_loader():
    """Make ``load_local_checkpoint`` mmengine's loader for paths without a scheme prefix."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
