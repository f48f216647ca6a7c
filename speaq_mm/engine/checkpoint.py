"""Checkpoint loading that works on torch >= 2.6 without letting a checkpoint run code.

mmengine 0.10.7 calls ``torch.load(filename)`` without ``weights_only``; since torch 2.6 that defaults to
``True`` and rejects the ``HistoryBuffer``/numpy objects mmengine itself stores in every checkpoint, so
``--resume`` and ``load_from`` of our own checkpoints fail (fixed on mmengine main, mmengine#1670, after
0.10.7). Importing ``speaq_mm`` registers :func:`load_local_checkpoint` as mmengine's loader for local paths:
it keeps ``weights_only=True`` and allows exactly the types our checkpoints hold
(:mod:`speaq_mm.utils.safe_loading`), so ``load_from``, ``--resume``, ``tools/test.py`` and
``mmdet.apis.init_detector`` read our checkpoints and refuse a file that could run code.
"""
from mmengine.runner.checkpoint import CheckpointLoader

from ..utils.safe_loading import load_torch_file


def load_local_checkpoint(filename, map_location=None):
    """Load a checkpoint from a local path with the allow-list of :func:`speaq_mm.utils.load_torch_file`."""
    return load_torch_file(filename, map_location=map_location, what='checkpoint')


def register_checkpoint_loader():
    """Make ``load_local_checkpoint`` mmengine's loader for paths without a scheme prefix."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
