"""What ``tools/train.py`` and ``tools/test.py`` share: reading a config and building its Runner."""
import difflib
import glob
import os.path as osp

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .config_variables import apply_variable_overrides
from .launch import prepare_launch


def load_run_config(config_path, cfg_options=None, work_dir=None, launcher='none'):
    """Read ``config_path``, apply command-line overrides and settle where the run writes.

    Overridden top-level variables also reach the keys the config's ``variable_targets`` lists for them
    (see :func:`apply_variable_overrides`). The work directory is, in order of precedence: ``work_dir``, the
    config's ``work_dir``, or ``work_dirs/<config name>``.
    """
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'config file {config_path} does not exist')
    cfg = Config.fromfile(config_path)
    if cfg_options:
        refuse_misspelt_keys(cfg, cfg_options, config_path)
        cfg.merge_from_dict(cfg_options)
        apply_variable_overrides(cfg, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    prepare_launch(cfg, launcher)
    return cfg


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


def check_work_dir_is_free(work_dir):
    """Refuse to start a new run in ``work_dir`` when it holds another run's checkpoints.

    mmengine would write the new run's ``iter_N.pth``, ``best_*.pth`` and ``last_checkpoint`` over the old
    ones without a word. ``tools/train.py`` calls this unless it is given ``--resume`` or ``--overwrite``.
    """
    found = sorted(osp.basename(path) for path in glob.glob(osp.join(glob.escape(work_dir), '*.pth')))
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        found.append('last_checkpoint')
    if found:
        shown = ', '.join(found[:5]) + (f' and {len(found) - 5} more' if len(found) > 5 else '')
        raise FileExistsError(
            f'work dir {work_dir} already holds checkpoints of another run ({shown}); nothing was changed. '
            'Pass --resume to continue that run, --overwrite to start a new run there anyway (its checkpoints '
            'are replaced as the new run saves), or choose another --work-dir.')


def build_runner(cfg):
    """Build the Runner named by ``cfg.runner_type`` (mmengine's ``Runner`` by default)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
