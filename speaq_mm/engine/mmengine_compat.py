"""Every place where speaq_mm changes or works around mmengine's own behaviour, in one module.

speaq_mm is tested with mmengine 0.10.7 (``TESTED_MMENGINE``). Each workaround below says what it targets, is
guarded by ``digit_version`` where a later mmengine fixes the cause, and says when to remove it. Two of them
act for the whole process and are installed by :func:`install_process_wide_workarounds` when ``speaq_mm`` is
imported (README, "What importing speaq_mm changes"):

1. :func:`load_local_checkpoint` becomes mmengine's loader for local checkpoint paths. mmengine 0.10.7 calls
   ``torch.load(filename)``, which on torch >= 2.6 rejects the ``HistoryBuffer``/numpy objects of mmengine's
   own checkpoints (fixed on mmengine main, mmengine#1670, by switching ``weights_only`` off, which lets a
   downloaded checkpoint run code). Ours keeps ``weights_only=True`` with the allow-list of
   ``speaq_mm.utils.safe_loading``, on every version. Remove when mmengine loads with an allow-list itself.
2. ``AtomicLocalBackend`` becomes mmengine's backend for local paths: mmengine (0.10.7 and main) writes
   files with a plain ``open(path, 'wb')``, so a killed save leaves a truncated checkpoint under its final
   name (``speaq_mm.utils.atomic_io``). Remove when ``LocalBackend.put`` writes atomically.

The others act only where speaq_mm calls them:

3. :func:`prepare_launch`: on mmengine <= 0.10.7 ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` for
   every backend and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]``, so gloo on a machine without
   CUDA fails. Remove when ``init_dist`` skips the CUDA device for gloo.
4. :func:`drop_disabled_default_hooks`: mmengine 0.10.7's ``register_default_hooks`` asserts on a
   ``default_hooks`` name it does not know even when its value is ``None`` (switched off). Remove when it
   skips unknown ``None`` entries.
5. :data:`InfiniteDataloaderIterator`: the iterator ``IterBasedTrainLoop`` uses is private in 0.10.7;
   ``SpeaQIterBasedTrainLoop`` builds one to resume at a batch. Remove together with that loop once
   mmengine resumes without replaying batches.
6. :func:`deferred_removals`: ``CheckpointHook._save_best_checkpoint`` (0.10.7 and main) deletes the old best
   checkpoint before it writes the new one; ``SpeaQCheckpointHook`` defers the deletion. Remove when mmengine
   writes first.
7. ``SpeaQCheckpointHook._save_checkpoint_with_step`` overrides that private method of ``CheckpointHook``
   (0.10.7), which deletes the checkpoint ``max_keep_ckpts`` retires before saving the new one; ours saves
   first. :data:`CHECKPOINT_SAVE_METHOD` names it, and importing this module fails loudly if a newer mmengine
   no longer has it. Remove when mmengine saves before it deletes.
"""
import contextlib
import os

import mmengine
import torch
import torch.distributed as torch_dist
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

from ..utils.atomic_io import atomic_write
from ..utils.safe_loading import load_torch_file

TESTED_MMENGINE = '0.10.7'
MMENGINE_VERSION = digit_version(mmengine.__version__)
# Workarounds 3-5 are for this version and older; a newer mmengine gets its own behaviour.
_UP_TO_TESTED = MMENGINE_VERSION <= digit_version(TESTED_MMENGINE)

# The default hooks mmengine itself knows; only these reach register_default_hooks when set to None.
MMENGINE_DEFAULT_HOOKS = frozenset(('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                                    'checkpoint'))

CHECKPOINT_SAVE_METHOD = '_save_checkpoint_with_step'
if not hasattr(CheckpointHook, CHECKPOINT_SAVE_METHOD):  # pragma: no cover - only on an untested mmengine
    raise ImportError(f'mmengine {mmengine.__version__}: CheckpointHook has no {CHECKPOINT_SAVE_METHOD}, which '
                      f'SpeaQCheckpointHook overrides (workaround 7 of {__name__}); speaq_mm is tested with '
                      f'mmengine {TESTED_MMENGINE}')

if _UP_TO_TESTED:
    from mmengine.runner.loops import _InfiniteDataloaderIterator as InfiniteDataloaderIterator
else:  # pragma: no cover - a newer mmengine may rename it; resuming then falls back to its replay
    from mmengine.runner import loops as _loops
    InfiniteDataloaderIterator = getattr(_loops, '_InfiniteDataloaderIterator', None)


# 1. Checkpoint loading ------------------------------------------------------------------------------------
def load_local_checkpoint(filename, map_location=None):
    """Load a checkpoint from a local path with the allow-list of :func:`speaq_mm.utils.load_torch_file`."""
    return load_torch_file(filename, map_location=map_location, what='checkpoint')


# 2. Atomic local writes -----------------------------------------------------------------------------------
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text`` (``speaq_mm.utils.atomic_io``)."""

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write(obj, str(filepath), encoding=encoding)


def install_process_wide_workarounds():
    """Install workarounds 1 and 2 (the module docstring); ``import speaq_mm`` calls this once."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


# 3. Distributed launch without CUDA -----------------------------------------------------------------------
def prepare_launch(cfg, launcher):
    """Adjust ``cfg`` (and the process group) so ``Runner.from_cfg(cfg)`` works for ``launcher``.

    Args:
        cfg (mmengine.Config): the run's config; ``cfg.launcher`` is set, and on CPU
            ``env_cfg.dist_cfg.backend`` and ``model_wrapper_cfg.device_ids`` too.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available() or not _UP_TO_TESTED:
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA on this version of mmengine; on a machine without GPUs '
            'start the processes with torchrun (tools/dist_train.sh), which uses --launcher pytorch.')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():  # the Runner then skips init_dist
        torch_dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))


# 4. Switched-off default hooks ----------------------------------------------------------------------------
def drop_disabled_default_hooks(cfg):
    """Remove ``default_hooks.<name>=None`` entries that mmengine's ``register_default_hooks`` would reject."""
    if not _UP_TO_TESTED:
        return
    for name, hook in list((cfg.get('default_hooks') or {}).items()):
        if hook is None and name not in MMENGINE_DEFAULT_HOOKS:
            del cfg.default_hooks[name]


# 6. Deleting the old best checkpoint last -----------------------------------------------------------------
@contextlib.contextmanager
def deferred_removals(file_backend):
    """Collect the paths ``file_backend.remove`` is asked to delete in the body instead of deleting them.

    Yields the list; the caller deletes them once the new files are complete. An instance attribute shadows
    the method only while the body runs.
    """
    deferred = []
    file_backend.remove = deferred.append
    try:
        yield deferred
    finally:
        del file_backend.remove
