"""Kill and resume: SIGKILL in the middle of a run and in the middle of a checkpoint write, then --resume.

One toy mix run of 6 iterations (validation and checkpoint every 2, max_keep_ckpts=1, best by R@50) is
killed twice and finished by ``tools/train.py --resume``. Every iteration that any of the three processes
trained must use the batch and the learning rate an uninterrupted run would use at that iteration, which
are computed here from a fresh sampler and fresh schedulers.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim.scheduler import LinearLR, MultiStepLR

from speaq_mm.engine.atomic_io import find_partial_files
from tests.reliability_fixtures import (
    BEST_KEY,
    copy_toy_data,
    expected_batches,
    kill_when,
    load_complete,
    read_records,
    shared_toy_data,
    start_training,
    write_run_config,
)

MAX_ITERS, INTERVAL, MILESTONE = 6, 2, 5


def expected_learning_rates(cfg, count):
    """Learning rate of iterations 1..count of an uninterrupted run (the config's schedulers, stepped)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [LinearLR(optimizer, start_factor=0.25, by_epoch=False, begin=0, end=3),
                  MultiStepLR(optimizer, by_epoch=False, begin=0, end=MAX_ITERS, milestones=[MILESTONE], gamma=0.1)]
    rates = []
    for _ in range(count):
        rates.append(optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    return rates


def checkpoints(work):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')))


def assert_every_checkpoint_complete(work):
    for path in glob.glob(osp.join(work, '*.pth')):
        load_complete(path)
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert osp.basename(f.read()) in checkpoints(work)


@pytest.mark.slow
def test_killed_twice_then_resumed_continues_as_if_never_stopped(tmp_path, tmp_path_factory):
    from tools.train import main as train_main

    roots = copy_toy_data(shared_toy_data(tmp_path_factory), str(tmp_path / 'data'))
    folder = str(tmp_path)
    work, records = osp.join(folder, 'work'), osp.join(folder, 'records')
    config = write_run_config(folder, roots, max_iters=MAX_ITERS, interval=INTERVAL, milestone=MILESTONE)
    stalling = write_run_config(folder + '/stall', roots, max_iters=MAX_ITERS, interval=INTERVAL,
                                milestone=MILESTONE, probe=dict(record_dir=records, stall_checkpoint_at=4),
                                extra=f'work_dir = {work!r}')

    # 1. SIGKILL in the middle of the run: after iteration 3, past the checkpoint and validation of iteration 2.
    log = osp.join(folder, 'run1.log')
    first = start_training(config, log)
    kill_when(first, lambda: any(r['event'] == 'train' and r['iter'] >= 3 for r in read_records(records)),
              timeout=400, log_path=log)
    assert checkpoints(work) == ['best_sgg_R@50_iter_2.pth', 'iter_2.pth']
    assert_every_checkpoint_complete(work)

    # 2. Resume, and SIGKILL while the checkpoint of iteration 4 is half written.
    log = osp.join(folder, 'run2.log')
    second = start_training(stalling, log, '--resume')
    kill_when(second, lambda: osp.exists(osp.join(records, 'stalled')), timeout=400, log_path=log)
    partial = find_partial_files(work)
    assert len(partial) == 1 and osp.basename(partial[0]).startswith('.iter_4.pth.')
    assert checkpoints(work) == ['best_sgg_R@50_iter_2.pth', 'iter_2.pth']  # iter_2 not yet retired
    assert_every_checkpoint_complete(work)

    # 3. Resume to the end, in this process.
    train_main([config, '--resume'])

    cfg = Config.fromfile(config)
    batches = expected_batches(cfg, MAX_ITERS)
    rates = expected_learning_rates(cfg, MAX_ITERS)
    runs = {}
    for record in read_records(records):
        runs.setdefault(record['pid'], []).append(record)
    assert len(runs) == 3
    trained = [[r['iter'] for r in run if r['event'] == 'train'] for run in runs.values()]
    assert trained[0][:3] == [1, 2, 3]
    assert trained[1] == [3, 4] and trained[2] == [3, 4, 5, 6]  # both resumed from iteration 2
    for run in runs.values():
        for record in run:
            if record['event'] == 'train':
                assert record['samples'] == batches[record['iter'] - 1], record['iter']
                assert record['lr'] == pytest.approx(rates[record['iter'] - 1], rel=1e-6), record['iter']
    assert rates[MILESTONE] == pytest.approx(rates[MILESTONE - 1] * 0.1)  # the schedule does change

    # No truncated or leftover files; the final checkpoint is complete and points back at the best one.
    assert find_partial_files(work) == []
    final = load_complete(osp.join(work, 'iter_6.pth'))
    assert final['meta']['iter'] == MAX_ITERS
    scores = [(r['iter'], r['score']) for run in runs.values() for r in run if r['event'] == 'val']
    assert [it for it, _ in scores] == [2, 4, 6]
    best_iter = next(it for it, score in scores if score == max(s for _, s in scores))
    best_name = f'best_{BEST_KEY.replace("/", "_")}_iter_{best_iter}.pth'
    assert checkpoints(work) == sorted([best_name, 'iter_6.pth'])
    runtime_info = final['message_hub']['runtime_info']
    assert runtime_info['best_score'] == max(s for _, s in scores)
    assert osp.basename(runtime_info['best_ckpt']) == best_name
    log = open(sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]).read()
    assert 'removed 1 incomplete file(s)' in log
    assert f'resumed best-checkpoint record for {BEST_KEY}' in log
