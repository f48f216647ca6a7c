from . import atomic_io, hooks, tolerant_loading  # noqa: F401  (atomic local writes, hooks, SGGLoadImageFromFile)
from .checkpoint import load_local_checkpoint, register_checkpoint_loader
from .config_variables import apply_variable_overrides
from .launch import prepare_launch
from .runner import build_runner, check_work_dir_is_free, load_run_config

register_checkpoint_loader()

__all__ = [
    'apply_variable_overrides',
    'load_local_checkpoint', 'register_checkpoint_loader', 'prepare_launch', 'build_runner',
    'check_work_dir_is_free', 'load_run_config'
]
