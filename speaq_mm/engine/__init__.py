from . import atomic_io, hooks, loops, tolerant_loading  # noqa: F401  (atomic writes, hooks, loop, image loader)
from .checkpoint import load_local_checkpoint, register_checkpoint_loader
from .launch import prepare_launch
from .runner import build_runner, check_work_dir_is_free, load_run_config, read_config

register_checkpoint_loader()

__all__ = [
    'load_local_checkpoint', 'register_checkpoint_loader', 'prepare_launch', 'build_runner',
    'check_work_dir_is_free', 'load_run_config', 'read_config'
]
