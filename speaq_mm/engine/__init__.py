from . import hooks, loops, optim_wrappers  # noqa: F401  (hooks, loop, optim wrappers)
from .hooks.checkpoint_compatibility_hook import CheckpointMismatchError, check_checkpoint_complete
from .mmengine_compat import (
    close_process_group,
    install_process_wide_workarounds,
    load_local_checkpoint,
    prepare_launch,
)
from .runner import (
    add_runner_arguments,
    build_runner,
    check_work_dir_is_free,
    checkpoint_folder,
    load_run_config,
    parse_runner_arguments,
    read_config,
)

__all__ = [
    'close_process_group', 'install_process_wide_workarounds', 'load_local_checkpoint', 'prepare_launch',
    'add_runner_arguments', 'build_runner', 'check_work_dir_is_free', 'checkpoint_folder', 'load_run_config',
    'parse_runner_arguments', 'read_config', 'CheckpointMismatchError', 'check_checkpoint_complete'
]
