"""speaq_mm/engine/runner.py and mmengine_compat.py, the runtime plumbing: config inheritance, checkpoint
save/resume on current torch, CPU launch settings, the options the tools share."""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

import speaq_mm  # noqa: F401  (registers the checkpoint loader)
from speaq_mm.engine import (
    add_runner_arguments,
    build_runner,
    load_local_checkpoint,
    load_run_config,
    parse_runner_arguments,
    prepare_launch,
)
from tests.datasets_fixtures import load_tool
from tests.foundation_fixtures import REPO_ROOT, write_toy_config
from tests.reliability_fixtures import free_port
from tests.tools_fixtures import TOY_MIX_CONFIG, one_torch_thread, tool_test_options


def test_config_inherits_default_runtime(tmp_path):
    cfg = Config.fromfile(write_toy_config(str(tmp_path), max_iters=2))
    assert cfg.default_scope == 'mmdet'
    assert 'speaq_mm' in cfg.custom_imports.imports
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def test_load_run_config_work_dir_precedence(tmp_path):
    path = write_toy_config(str(tmp_path), max_iters=2)
    assert load_run_config(path).work_dir == osp.join('work_dirs', 'toy_regressor')
    assert load_run_config(path, work_dir='elsewhere').work_dir == 'elsewhere'
    cfg = load_run_config(path, cfg_options={'train_cfg.max_iters': 7})
    assert cfg.train_cfg.max_iters == 7


def test_missing_config_names_the_file(tmp_path):
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        load_run_config(missing)


def test_save_and_resume_under_current_torch(tmp_path):
    config = write_toy_config(str(tmp_path), max_iters=4)
    work_dir = str(tmp_path / 'work')
    runner = build_runner(load_run_config(config, work_dir=work_dir))
    runner.train()
    weight_after_4 = runner.model.weight.detach().clone()
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))

    # The checkpoint holds mmengine's own objects (message hub history), which torch >= 2.6 refuses to
    # unpickle by default; our loader must read it.
    checkpoint = load_local_checkpoint(osp.join(work_dir, 'iter_4.pth'))
    assert checkpoint['meta']['iter'] == 4

    cfg = load_run_config(config, cfg_options={'train_cfg.max_iters': 6}, work_dir=work_dir)
    cfg.resume = True
    resumed = build_runner(cfg)
    resumed.train()
    assert resumed.iter == 6
    assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))
    # Resuming restored the weights and kept training them.
    assert not torch.equal(resumed.model.weight.detach(), weight_after_4)


def test_mmengine_default_loader_fails_without_our_fix(tmp_path):
    """Guards the premise of workaround 1 in speaq_mm.engine.mmengine_compat: if this passes, revisit it."""
    config = write_toy_config(str(tmp_path), max_iters=2)
    work_dir = str(tmp_path / 'work')
    build_runner(load_run_config(config, work_dir=work_dir)).train()
    path = osp.join(work_dir, 'iter_2.pth')
    with pytest.raises(Exception, match='weights_only'):
        torch.load(path)
    assert CheckpointLoader._schemes[''] is load_local_checkpoint
    assert CheckpointLoader.load_checkpoint(path)['meta']['iter'] == 2


def test_prepare_launch_on_cpu_picks_gloo_and_no_device_ids(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config.fromfile(write_toy_config(str(tmp_path), max_iters=2))
    initialised = {}
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: False)
    monkeypatch.setattr(torch.distributed, 'init_process_group',
                        lambda **kwargs: initialised.update(kwargs))
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    prepare_launch(cfg, 'pytorch')
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert initialised == dict(backend='gloo', rank=1, world_size=2)


def test_prepare_launch_rejects_slurm_without_cuda(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config.fromfile(write_toy_config(str(tmp_path), max_iters=2))
    with pytest.raises(RuntimeError, match='torchrun'):
        prepare_launch(cfg, 'slurm')


def test_dist_train_sh_runs_two_cpu_processes(tmp_path):
    config = write_toy_config(str(tmp_path), max_iters=2, checkpoint_interval=2)
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable)  # a busy machine runs other torchruns
    result = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), config, '2', '--work-dir', str(work_dir)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (work_dir / 'iter_2.pth').is_file()
    assert 'Distributed launcher: pytorch' in result.stdout + result.stderr


def test_load_run_config_refuses_overrides_of_used_variables(tmp_path):
    path = write_toy_config(str(tmp_path), max_iters=2)
    with open(path, 'a') as f:
        f.write("step_size = 0.00125\n"
                "optim_wrapper = dict(optimizer=dict(lr=step_size))\n")
    with pytest.raises(KeyError, match=r'"step_size" is a variable.*instead: optim_wrapper\.optimizer\.lr\.'):
        load_run_config(path, cfg_options={'step_size': 0.5})
    assert load_run_config(path, cfg_options={'optim_wrapper.optimizer.lr': 0.5}).optim_wrapper.optimizer.lr == 0.5


def test_default_hooks_unknown_to_mmengine_can_be_switched_off(tmp_path):
    path = write_toy_config(str(tmp_path), max_iters=2)
    cfg = load_run_config(path, cfg_options={'default_hooks.empty_relations_guard': None})
    assert 'empty_relations_guard' not in cfg.default_hooks and 'non_finite_guard' in cfg.default_hooks


def test_load_run_config_allows_new_keys_but_refuses_near_misses(tmp_path):
    path = write_toy_config(str(tmp_path), max_iters=2)
    assert load_run_config(path, cfg_options={'find_unused_parameters': True}).find_unused_parameters
    with pytest.raises(KeyError, match='train_cfgg.*did you mean "train_cfg"'):
        load_run_config(path, cfg_options={'train_cfgg.max_iters': 3})


def test_runner_arguments_are_shared_by_the_tools(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    parser = argparse.ArgumentParser()
    add_runner_arguments(parser, 'train_dataloader.batch_size=4', 'tools/dist_train.sh')
    args = parse_runner_arguments(parser, ['--cfg-options', 'a.b=1', '--launcher', 'pytorch', '--local_rank', '3',
                                           '--trust-pickle', 'x.pth'])
    assert (args.cfg_options, args.launcher, args.trust_pickle) == ({'a.b': 1}, 'pytorch', ['x.pth'])
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.setenv('LOCAL_RANK', '1')  # a launcher's value wins over --local-rank's default
    assert parse_runner_arguments(parser, []).launcher == 'none' and os.environ['LOCAL_RANK'] == '1'


def test_runs_of_one_config_in_one_process_keep_their_own_log_and_visualizer(tmp_path, monkeypatch):
    """Two runs of one config started within the same second (a sweep, a notebook) each log into their own
    work dir: mmengine would hand the second run the first run's logger, message hub and visualizer."""
    monkeypatch.setattr('mmengine.runner.runner.time.time', lambda: 1.8e9)  # both runs get one timestamp
    config = write_toy_config(str(tmp_path), max_iters=1)
    runners = [build_runner(load_run_config(config, work_dir=str(tmp_path / name))) for name in ('first', 'second')]
    for runner in runners:
        runner.logger.info(f'written by the run in {runner.work_dir}')
        runner.message_hub.update_scalar('train/marker', len(runner.work_dir))
        runner.visualizer.add_scalars({'marker': 1.0})
    assert runners[0].logger is not runners[1].logger and runners[0].message_hub is not runners[1].message_hub
    for runner in runners:
        log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
        assert f'written by the run in {runner.work_dir}\n' in log and log.count('written by the run in') == 1
        assert runner.message_hub.get_scalar('train/marker').data[1] == 1
        assert osp.isfile(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))


def test_a_launched_training_run_closes_its_process_group(tmp_path, one_rank_launch):
    """tools/train.py under torchrun destroys the process group once the run is done: a gloo group left alive
    can abort the process at exit (SIGABRT, exit code -6) after a finished run."""
    config = write_toy_config(str(tmp_path), max_iters=1)
    load_tool('tools/train.py').main([config, '--work-dir', str(tmp_path / 'work'), '--launcher', 'pytorch'])
    assert one_rank_launch == ['gloo'] and not torch.distributed.is_initialized()


def test_a_launched_test_run_closes_its_process_group(tmp_path, toy_run, one_rank_launch):
    options = tool_test_options(toy_run.real_root, 'launched_test')
    with one_torch_thread():
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path),
                                         '--launcher', 'pytorch', '--cfg-options',
                                         *(f'{key}={value}' for key, value in options.items())])
    assert one_rank_launch == ['gloo'] and not torch.distributed.is_initialized()
    assert glob.glob(str(tmp_path / '*' / '*.log')), 'the test run did not run'
