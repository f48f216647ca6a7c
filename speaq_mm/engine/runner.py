"""What ``tools/train.py`` and ``tools/test.py`` share: reading a config and building its Runner."""
import argparse
import difflib
import glob
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..utils import add_trust_argument
from .mmengine_compat import drop_disabled_default_hooks, prepare_launch, separate_run_instances

# The top-level keys mmengine's Runner (and speaq_mm's tools) read. Any other top-level key of a config is a
# variable of the config file: its value was copied into the keys that use it when the file was read.
RUNTIME_KEYS = frozenset((
    'model', 'data_preprocessor', 'work_dir', 'experiment_name', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'load_from', 'resume', 'launcher',
    'env_cfg', 'log_processor', 'log_level', 'visualizer', 'default_scope', 'randomness', 'custom_imports',
    'find_unused_parameters', 'model_wrapper_cfg', 'compile', 'strategy', 'runner_type', 'cfg'))


def add_runner_arguments(parser, override_example, launch_script):
    """Add the options of every tool that builds a Runner from a config: ``--cfg-options`` (its help shows
    ``override_example``), ``--launcher`` (``launch_script`` sets ``pytorch``), ``--local-rank`` (older
    launchers pass it) and ``--trust-pickle``."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help=f'override config keys, e.g. {override_example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help=f'how the processes were started ({launch_script} sets pytorch)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    add_trust_argument(parser)


def parse_runner_arguments(parser, argv=None):
    """Parse the arguments of a parser with `add_runner_arguments`; ``--local-rank`` becomes ``LOCAL_RANK``
    unless the launcher set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def read_config(config_path, cfg_options=None):
    """Read ``config_path`` and apply command-line overrides; every tool that takes ``--cfg-options`` uses it.

    A near-miss top-level key (:func:`refuse_misspelt_keys`) and an override of a top-level variable the config
    has already used, ``max_iters=5`` (:func:`refuse_used_variable_overrides`), are refused with a message
    naming the keys to set. ``default_hooks.<name>=None`` switches off any default hook, also those mmengine
    0.10.7 does not know (its ``register_default_hooks`` asserts on them).
    """
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'config file {config_path} does not exist')
    cfg = Config.fromfile(config_path)
    if cfg_options:
        refuse_misspelt_keys(cfg, cfg_options, config_path)
        refuse_used_variable_overrides(cfg, cfg_options, config_path)
        cfg.merge_from_dict(cfg_options)
    drop_disabled_default_hooks(cfg)
    return cfg


def load_run_config(config_path, cfg_options=None, work_dir=None, launcher='none'):
    """:func:`read_config`, then settle where the run writes and how it is launched.

    The work directory is, in order of precedence: ``work_dir``, the config's ``work_dir``, or
    ``work_dirs/<config name>``.
    """
    cfg = read_config(config_path, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    prepare_launch(cfg, launcher)
    settle_gradient_accumulation(cfg)
    return cfg


def settle_gradient_accumulation(cfg):
    """Give ``SGGRatioBatchSampler`` the optimizer wrapper's ``accumulative_counts`` (docs/distributed.md,
    "Gradient accumulation"), so that its exact source mix holds over the samples of each optimizer step
    rather than of each micro-batch; refuse a sampler set to another count."""
    counts = (cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1)
    batch_sampler = (cfg.get('train_dataloader') or {}).get('batch_sampler') or {}
    if batch_sampler.get('type') != 'SGGRatioBatchSampler':
        return
    given = batch_sampler.get('accumulative_counts')
    if given is not None and given != counts:
        raise ValueError(f'train_dataloader.batch_sampler.accumulative_counts = {given} but '
                         f'optim_wrapper.accumulative_counts = {counts}; set only the optimizer wrapper\'s, the '
                         'sampler follows it')
    batch_sampler['accumulative_counts'] = counts


def refuse_misspelt_keys(cfg, cfg_options, config_path):
    """Raise if an override's top-level key is missing from the config but close to one it has.

    ``--cfg-options`` may add new top-level keys (``find_unused_parameters=True``), so unknown keys are
    allowed; a near miss such as ``real_ratoi`` would otherwise change nothing without a word.
    """
    for key in cfg_options:
        top = key.split('.')[0]
        if top in cfg:
            continue
        close = difflib.get_close_matches(top, list(cfg.keys()), n=1, cutoff=0.8)
        if close:
            raise KeyError(f'--cfg-options {key}: {config_path} has no key "{top}"; did you mean "{close[0]}"?')


def _value_at(cfg, dotted):
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif hasattr(node, 'keys') and part in node:
            node = node[part]
        else:
            raise KeyError(dotted)
    return node


def _paths_holding(node, value, prefix):
    """Dotted paths below ``node`` whose value equals ``value`` (list positions as numbers)."""
    if type(node) is type(value) and node == value:
        return [prefix]
    if hasattr(node, 'items'):
        children = node.items()
    elif isinstance(node, (list, tuple)):
        children = enumerate(node)
    else:
        return []
    return [path for key, child in children for path in _paths_holding(child, value, f'{prefix}.{key}')]


def refuse_used_variable_overrides(cfg, cfg_options, config_path):
    """Raise if an override names a top-level variable of the config file rather than a key the run reads.

    mmengine evaluates a config file once: after ``max_iters = 1500`` and ``train_cfg = dict(max_iters=
    max_iters)`` the value sits in ``train_cfg.max_iters``, and ``--cfg-options max_iters=5`` would change the
    variable only, with no effect. The error names the keys that hold the variable's value, the ones to set.
    """
    for key, value in cfg_options.items():
        top = key.split('.')[0]
        if top in RUNTIME_KEYS or top not in cfg:
            continue
        try:
            current = _value_at(cfg, key)
        except KeyError:
            current = cfg[top]
        holders = [path for name in cfg.keys() if name in RUNTIME_KEYS
                   for path in _paths_holding(cfg[name], current, name)]
        shown = ', '.join(holders[:8]) + (f' and {len(holders) - 8} more' if len(holders) > 8 else '')
        hint = (f'Set the keys that took its value instead: {shown}' if holders else
                'No key the run reads holds its value; see the config for where it went')
        raise KeyError(f'--cfg-options {key}={value!r}: "{top}" is a variable of {config_path}, whose value was '
                       f'copied where it is used when the file was read, so changing it now would change '
                       f'nothing. {hint}.')


def checkpoint_folder(cfg):
    """Where the run's checkpoints go: the work dir, or with ``default_hooks.checkpoint.out_dir`` set,
    ``<out_dir>/<base name of the work dir>`` (mmengine's ``CheckpointHook`` rule). Two runs whose work dirs
    share a base name share that folder."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir')
    if not out_dir or out_dir == cfg.work_dir:
        return cfg.work_dir
    return osp.join(out_dir, osp.basename(cfg.work_dir.rstrip(osp.sep)))


def _run_files(folder):
    found = sorted(osp.basename(path) for path in glob.glob(osp.join(glob.escape(folder), '*.pth')))
    if osp.isfile(osp.join(folder, 'last_checkpoint')):
        found.append('last_checkpoint')
    return found


def check_work_dir_is_free(work_dir, checkpoint_dir=None):
    """Refuse to start a new run in ``work_dir`` when it, or the run's ``checkpoint_dir`` (see
    :func:`checkpoint_folder`), holds another run's checkpoints or ``last_checkpoint`` pointer.

    mmengine would write the new run's ``iter_N.pth``, ``best_*.pth`` and ``last_checkpoint`` over the old
    ones without a word. ``tools/train.py`` calls this for every run that starts from iteration 0 (no
    ``--resume``, or ``--resume`` with nothing to resume), unless it is given ``--overwrite``.
    """
    folders = [work_dir] + ([checkpoint_dir] if checkpoint_dir and checkpoint_dir != work_dir else [])
    for folder in folders:
        found = _run_files(folder)
        if not found:
            continue
        shown = ', '.join(found[:5]) + (f' and {len(found) - 5} more' if len(found) > 5 else '')
        where = (f'work dir {work_dir}' if folder == work_dir else
                 f'checkpoint folder {folder} (default_hooks.checkpoint.out_dir and the base name of work dir '
                 f'{work_dir})')
        raise FileExistsError(
            f'{where} already holds checkpoints of another run ({shown}); nothing was changed. '
            'Pass --resume to continue that run, --overwrite to start a new run there anyway (its checkpoints '
            'are replaced as the new run saves), or choose another --work-dir.')


def build_runner(cfg):
    """Build the Runner named by ``cfg.runner_type`` (mmengine's ``Runner`` by default), with a logger, message
    hub and visualizer no earlier run of this process shares (workaround 11 of ``mmengine_compat``)."""
    separate_run_instances(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
