"""Atomic checkpoint writes: a full disk or a killed save never leaves a truncated or missing checkpoint."""
import errno
import os
import os.path as osp
import stat
import subprocess
import sys

import mmengine
import pytest
import torch
from mmengine.fileio import get_file_backend

from speaq_mm.engine import build_runner, load_run_config
from speaq_mm.engine.hooks.speaq_checkpoint_hook import SpeaQCheckpointHook
from speaq_mm.engine.mmengine_compat import AtomicLocalBackend
from speaq_mm.utils import atomic_io
from speaq_mm.utils.atomic_io import AtomicWriteError, atomic_write, find_partial_files
from tests.foundation_fixtures import write_toy_config
from tests.reliability_fixtures import load_complete


def fill_disk_after(monkeypatch, fraction=0.5, matching=''):
    """Make writes of files whose temporary name contains ``matching`` fail with ENOSPC part-way."""
    write = atomic_io._write_payload

    def full_disk(stream, data):
        if matching not in osp.basename(stream.name):
            return write(stream, data)
        stream.write(data[:int(len(data) * fraction)])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_io, '_write_payload', full_disk)


def test_atomic_write_replaces_the_file_with_normal_permissions(tmp_path):
    target = tmp_path / 'sub' / 'file.txt'
    atomic_write('first', str(target))
    atomic_write(b'second', str(target))
    assert target.read_text() == 'second'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert find_partial_files(str(target.parent)) == []


def test_disk_full_keeps_the_old_file_and_names_the_cause(tmp_path, monkeypatch):
    target = tmp_path / 'iter_4.pth'
    target.write_bytes(b'complete old checkpoint')
    fill_disk_after(monkeypatch)
    with pytest.raises(AtomicWriteError, match='iter_4.pth .*no space left on the device.*intact') as info:
        atomic_write(b'x' * 1000, str(target))
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b'complete old checkpoint'
    assert find_partial_files(str(tmp_path)) == []


def test_interrupted_write_leaves_only_a_partial_file(tmp_path, monkeypatch):
    """What a SIGKILL in the middle of the write leaves (a KeyboardInterrupt stands in for it here)."""
    def interrupted(stream, data):
        stream.write(data[:3])
        stream.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_io, '_write_payload', interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(b'abcdef', str(tmp_path / 'ckpt.pth'))
    assert os.listdir(tmp_path) == []  # cleaned up; a real kill leaves the .partial file for the hook


def test_mmengine_local_writes_go_through_the_atomic_backend(tmp_path, monkeypatch):
    assert isinstance(get_file_backend(str(tmp_path / 'a.pkl')), AtomicLocalBackend)
    mmengine.dump(dict(a=1), str(tmp_path / 'a.json'))
    assert mmengine.load(str(tmp_path / 'a.json')) == dict(a=1)
    fill_disk_after(monkeypatch)
    with pytest.raises(AtomicWriteError):
        mmengine.dump(dict(a=2), str(tmp_path / 'a.json'))
    assert mmengine.load(str(tmp_path / 'a.json')) == dict(a=1)


def _toy_runner_config(tmp_path, max_iters=4, hook='SpeaQCheckpointHook'):
    config = write_toy_config(str(tmp_path), max_iters=max_iters, checkpoint_interval=2)
    cfg = load_run_config(config, work_dir=str(tmp_path / 'work'))
    cfg.default_hooks.checkpoint.update(type=hook, max_keep_ckpts=1)
    cfg.experiment_name = f'{tmp_path.name}_{hook}'
    return cfg


def test_disk_full_during_a_save_keeps_the_previous_checkpoint_and_resumes(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    fill_disk_after(monkeypatch, matching='iter_4.pth')
    with pytest.raises(AtomicWriteError, match='iter_4.pth') as info:
        build_runner(_toy_runner_config(tmp_path)).train()
    assert info.value.errno == errno.ENOSPC
    # max_keep_ckpts=1 must not have retired iter_2 before iter_4 was complete.
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']
    assert load_complete(str(work / 'iter_2.pth'))['meta']['iter'] == 2
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert find_partial_files(str(work)) == []

    monkeypatch.undo()  # space freed: resuming continues from iter 2
    cfg = _toy_runner_config(tmp_path)
    cfg.experiment_name += '_resumed'
    cfg.resume = True
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 4
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_4.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')


def test_mmengine_checkpoint_hook_loses_the_previous_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    """Guards the premise of SpeaQCheckpointHook: if this starts failing, mmengine fixed the save order."""
    fill_disk_after(monkeypatch, matching='iter_4.pth')
    with pytest.raises(AtomicWriteError):
        build_runner(_toy_runner_config(tmp_path, hook='CheckpointHook')).train()
    assert list((tmp_path / 'work').glob('*.pth')) == []


def test_partial_files_of_an_interrupted_save_are_removed_with_a_warning(tmp_path):
    cfg = _toy_runner_config(tmp_path, max_iters=2)
    os.makedirs(cfg.work_dir)
    # What a save killed mid-write leaves: the writer (a process that has exited) is named in the file name.
    killed = subprocess.Popen([sys.executable, '-c', 'pass'])
    killed.wait()
    name = f'.iter_6.pth.{killed.pid}@{atomic_io._writer_token().split("@")[1]}.x1y2.partial'
    leftover = osp.join(cfg.work_dir, name)
    with open(leftover, 'wb') as f:
        f.write(b'half a checkpoint')
    runner = build_runner(cfg)
    runner.train()
    assert not osp.exists(leftover)
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'removed 1 incomplete file(s)' in log and name in log


def test_a_new_best_checkpoint_that_cannot_be_written_keeps_the_old_best(tmp_path, monkeypatch):
    cfg = _toy_runner_config(tmp_path)
    cfg.default_hooks.checkpoint.update(save_best='acc', rule='greater')
    runner = build_runner(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, SpeaQCheckpointHook))
    hook.before_train(runner)
    runner.train_loop._iter = 2
    hook._save_best_checkpoint(runner, dict(acc=0.5))
    first_best = osp.join(runner.work_dir, 'best_acc_iter_2.pth')
    assert osp.isfile(first_best)

    runner.train_loop._iter = 4
    fill_disk_after(monkeypatch, matching='best_acc_iter_4')
    with pytest.raises(AtomicWriteError):
        hook._save_best_checkpoint(runner, dict(acc=0.9))
    assert osp.isfile(first_best) and load_complete(first_best)['meta']['iter'] == 2

    monkeypatch.undo()
    hook._save_best_checkpoint(runner, dict(acc=0.9))
    assert not osp.exists(first_best) and osp.isfile(osp.join(runner.work_dir, 'best_acc_iter_4.pth'))
    assert torch.is_tensor(load_complete(osp.join(runner.work_dir, 'best_acc_iter_4.pth'))['state_dict']['weight'])
