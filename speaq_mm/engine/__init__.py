from . import hooks, loops, optim_wrappers  # noqa: F401  (hooks, loop, optim wrappers)
from .mmengine_compat import install_process_wide_workarounds, load_local_checkpoint, prepare_launch
from .runner import (
    add_runner_arguments,
    build_runner,
    check_work_dir_is_free,
    load_run_config,
    parse_runner_arguments,
    read_config,
)

__all__ = [
    'install_process_wide_workarounds', 'load_local_checkpoint', 'prepare_launch', 'add_runner_arguments',
    'build_runner', 'check_work_dir_is_free', 'load_run_config', 'parse_runner_arguments', 'read_config'
]
