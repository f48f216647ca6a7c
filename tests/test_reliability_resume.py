"""Kill and resume: SIGKILL in the middle of a run and in the middle of a checkpoint write, then --resume.

One toy mix run of 6 iterations (validation and checkpoint every 2, max_keep_ckpts=1, best by R@50) is
killed twice and finished by ``tools/train.py --resume``. Every iteration that any of the three processes
trained must use the batch and the learning rate an uninterrupted run would use at that iteration, which
are computed here from a fresh sampler and fresh schedulers.
"""
import glob
import os.path as osp
import re
import subprocess

import pytest
import torch
from mmengine.config import Config
from mmengine.optim.scheduler import LinearLR, MultiStepLR

from speaq_mm.utils.atomic_io import find_partial_files
from tests.datasets_fixtures import load_tool
from tests.reliability_fixtures import (
    BEST_KEY,
    REPO_ROOT,
    copy_toy_data,
    expected_batches,
    free_port,
    kill_when,
    load_complete,
    read_decodes,
    read_records,
    stall_marker,
    start_training,
    subprocess_env,
    write_run_config,
)
from tests.tools_fixtures import snapshot

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
def test_killed_twice_then_resumed_continues_as_if_never_stopped(tmp_path, reliability_toy_data):
    train_main = load_tool('tools/train.py').main

    roots = copy_toy_data(reliability_toy_data, str(tmp_path / 'data'))
    folder = str(tmp_path)
    work, records = osp.join(folder, 'work'), osp.join(folder, 'records')
    config = write_run_config(folder, roots, max_iters=MAX_ITERS, interval=INTERVAL, milestone=MILESTONE)
    stalling_at_3 = write_run_config(folder + '/stall_iter', roots, max_iters=MAX_ITERS, interval=INTERVAL,
                                     milestone=MILESTONE, probe=dict(record_dir=records, stall_after_iter=3),
                                     extra=f'work_dir = {work!r}')
    stalling = write_run_config(folder + '/stall', roots, max_iters=MAX_ITERS, interval=INTERVAL,
                                milestone=MILESTONE, probe=dict(record_dir=records, stall_checkpoint_at=4),
                                extra=f'work_dir = {work!r}')

    # 1. SIGKILL in the middle of the run: after iteration 3, past the checkpoint and validation of iteration 2.
    log = osp.join(folder, 'run1.log')
    first = start_training(stalling_at_3, log)
    kill_when(first, lambda: osp.exists(stall_marker(records, 3)), timeout=400, log_path=log)
    best_at_2 = f'best_{BEST_KEY.replace("/", "_")}_iter_2.pth'
    assert checkpoints(work) == [best_at_2, 'iter_2.pth']
    assert_every_checkpoint_complete(work)

    # 2. Resume, and SIGKILL while the checkpoint of iteration 4 is half written.
    log = osp.join(folder, 'run2.log')
    second = start_training(stalling, log, '--resume')
    kill_when(second, lambda: osp.exists(osp.join(records, 'stalled')), timeout=400, log_path=log)
    partial = find_partial_files(work)
    assert len(partial) == 1 and osp.basename(partial[0]).startswith('.iter_4.pth.')
    assert checkpoints(work) == [best_at_2, 'iter_2.pth']  # iter_2 not yet retired
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
    assert len({score for _, score in scores}) == 3 and all(score > 0 for _, score in scores)
    best_iter = next(it for it, score in scores if score == max(s for _, s in scores))
    best_name = f'best_{BEST_KEY.replace("/", "_")}_iter_{best_iter}.pth'
    assert checkpoints(work) == sorted([best_name, 'iter_6.pth'])
    runtime_info = final['message_hub']['runtime_info']
    assert runtime_info['best_score'] == max(s for _, s in scores)
    assert runtime_info['best_ckpt'] == best_name  # recorded relative to the work dir
    log = open(sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]).read()
    assert 'removed 1 incomplete file(s)' in log
    assert f'resumed best-checkpoint record for {BEST_KEY}' in log


def _straight_killed_resumed(folder, roots, max_iters, kill_after, launcher, **run_args):
    """Run ``max_iters`` iterations straight; run them again, SIGKILLed once iteration ``kill_after``'s
    checkpoint is complete and the next iteration trained, then resumed with ``--resume``. Return both
    folders' work dirs and record dirs."""
    straight = write_run_config(osp.join(folder, 'straight'), roots, max_iters=max_iters, interval=kill_after,
                                milestone=max_iters - 4, **run_args)
    killed = write_run_config(osp.join(folder, 'killed'), roots, max_iters=max_iters, interval=kill_after,
                              milestone=max_iters - 4, probe=dict(stall_after_iter=kill_after + 1), **run_args)
    killed_work = osp.join(folder, 'killed', 'work')
    resumed = write_run_config(osp.join(folder, 'resumed'), roots, max_iters=max_iters, interval=kill_after,
                               milestone=max_iters - 4, extra=f'work_dir = {killed_work!r}', **run_args)
    launcher(straight, osp.join(folder, 'straight.log')).wait()
    log = osp.join(folder, 'killed.log')
    records = osp.join(folder, 'killed', 'records')
    kill_when(launcher(killed, log), lambda: osp.exists(stall_marker(records, kill_after + 1)), timeout=600,
              log_path=log)
    assert f'iter_{kill_after}.pth' in checkpoints(killed_work) and f'iter_{max_iters}.pth' not in checkpoints(
        killed_work)
    process = launcher(resumed, osp.join(folder, 'resumed.log'), '--resume')
    assert process.wait() == 0, open(osp.join(folder, 'resumed.log')).read()[-4000:]
    return {name: (osp.join(folder, name, 'work'), osp.join(folder, name, 'records'))
            for name in ('straight', 'killed', 'resumed')}


def assert_same_training_state(first, second):
    """Weights, optimizer state and schedulers of two checkpoints are the same (max |diff| <= 1e-6)."""
    differences = {key: (first['state_dict'][key].double() - second['state_dict'][key].double()).abs().max().item()
                   for key in first['state_dict']}
    assert first['state_dict'].keys() == second['state_dict'].keys()
    assert max(differences.values()) <= 1e-6, sorted(differences.items(), key=lambda kv: -kv[1])[:5]
    states = [c['optimizer']['state'] for c in (first, second)]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        for name, value in states[0][key].items():
            assert torch.allclose(value, states[1][key][name], rtol=0, atol=1e-6), (key, name)
    assert first['param_schedulers'] == second['param_schedulers']


def trained_records(record_dir, rank=0):
    return {r['iter']: r for r in read_records(record_dir, rank) if r['event'] == 'train'}


@pytest.mark.slow
def test_a_killed_and_resumed_run_equals_the_run_never_stopped(tmp_path, reliability_toy_data):
    """Dropout on, 2 persistent dataloader workers, random flips: killed after the iteration-12 checkpoint and
    resumed to 24, the run ends with the weights, optimizer state, losses, learning rates and batches of the
    straight run, and the resume decodes only the images of the batches it still trains on (plus prefetch)."""
    batch, workers = 2, 2
    runs = _straight_killed_resumed(str(tmp_path), reliability_toy_data, 24, 12, start_training,
                                    batch_size=batch, num_workers=workers, dropout=0.1, count_decodes=True)
    straight = load_complete(osp.join(runs['straight'][0], 'iter_24.pth'))
    resumed = load_complete(osp.join(runs['killed'][0], 'iter_24.pth'))
    assert_same_training_state(straight, resumed)
    assert straight['meta']['iter'] == resumed['meta']['iter'] == 24
    straight_records, resumed_records = trained_records(runs['straight'][1]), trained_records(runs['resumed'][1])
    assert sorted(resumed_records) == list(range(13, 25))
    for iteration, record in resumed_records.items():
        expected = straight_records[iteration]
        assert (record['samples'], record['lr'], record['loss']) == (
            expected['samples'], expected['lr'], expected['loss']), iteration
    assert len({record['loss'] for record in resumed_records.values()}) == 12  # the model does train
    decoded = read_decodes(runs['resumed'][1])
    prefetch = 2 * workers  # batches each dataloader iterator requests ahead (prefetch_factor 2 per worker)
    assert 12 * batch <= len(decoded) <= (12 + 2 * prefetch) * batch  # the replay would decode 24 + prefetch
    assert len(read_decodes(runs['straight'][1])) >= 24 * batch


def assert_bit_identical(first, second):
    """Weights, buffers and optimizer state of two checkpoints are equal bit for bit."""
    assert first['state_dict'].keys() == second['state_dict'].keys()
    differing = [key for key in first['state_dict'] if not torch.equal(first['state_dict'][key],
                                                                      second['state_dict'][key])]
    assert not differing, f'{len(differing)} of {len(first["state_dict"])} tensors differ: {differing[:5]}'
    states = [c['optimizer']['state'] for c in (first, second)]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(value, states[1][key][name]) for key in states[0] for name, value in states[0][key].items())


@pytest.mark.slow
@pytest.mark.parametrize('ranks', [1, 2])
def test_the_single_source_recipe_killed_past_its_first_epoch_resumes_bit_for_bit(tmp_path, reliability_toy_data,
                                                                                   ranks):
    """configs/toy/speaq_tiny_toy_real.py as shipped (mmdet's aspect-ratio batches, 1 persistent dataloader
    worker) on the 12 toy train images, batch 2 (6 batches an epoch on 1 rank, 3 on 2): killed after the
    iteration-8 checkpoint, past its first epoch, and resumed to 12, it ends bit for bit where the straight run
    ends. The iterator the loop builds before the checkpoint is loaded prefetches epoch 0; that must not change
    how the resume counts the epoch's batches."""
    launcher = start_training if ranks == 1 else start_two_rank_training
    runs = _straight_killed_resumed(str(tmp_path), reliability_toy_data, 12, 8, launcher,
                                    batch_size=2, num_workers=None, single_source=True)
    with open(osp.join(str(tmp_path), 'resumed.log')) as f:
        assert re.search(r'resuming at batch 8 \(epoch [1-9] of the batch sampler\)', f.read())
    straight = load_complete(osp.join(runs['straight'][0], 'iter_12.pth'))
    assert_bit_identical(straight, load_complete(osp.join(runs['killed'][0], 'iter_12.pth')))
    for rank in range(ranks):
        straight_records = trained_records(runs['straight'][1], rank)
        resumed_records = trained_records(runs['resumed'][1], rank)
        assert sorted(resumed_records) == list(range(9, 13))
        for iteration, record in resumed_records.items():
            expected = straight_records[iteration]
            assert (record['samples'], record['lr'], record['loss']) == (
                expected['samples'], expected['lr'], expected['loss']), (rank, iteration)
        assert all(sample[0] == 'real' for record in straight_records.values() for sample in record['samples'])


def start_two_rank_training(config, log_path, *args):
    """Start ``tools/dist_train.sh config 2 *args`` (two gloo ranks) in a new process group."""
    log = open(log_path, 'w')
    return subprocess.Popen(['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), config, '2', *args],
                            cwd=REPO_ROOT, env=subprocess_env(PORT=str(free_port())), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_two_gloo_ranks_killed_and_resumed_equal_the_run_never_stopped(tmp_path, reliability_toy_data):
    runs = _straight_killed_resumed(str(tmp_path), reliability_toy_data, 8, 4, start_two_rank_training,
                                    batch_size=2, num_workers=1, dropout=0.1)
    assert_same_training_state(load_complete(osp.join(runs['straight'][0], 'iter_8.pth')),
                               load_complete(osp.join(runs['killed'][0], 'iter_8.pth')))
    for rank in (0, 1):
        straight, resumed = trained_records(runs['straight'][1], rank), trained_records(runs['resumed'][1], rank)
        assert sorted(resumed) == [5, 6, 7, 8]
        assert all(resumed[i]['samples'] == straight[i]['samples'] and resumed[i]['loss'] == straight[i]['loss']
                   for i in resumed)


def test_resuming_another_runs_checkpoint_never_touches_its_files(tmp_path, reliability_toy_data):
    """``--resume OTHER/iter_N.pth`` into a new work dir: a new best checkpoint there must not delete the other
    run's best one, even when the checkpoint records its path as absolute (as mmengine's own hook does)."""
    train_main = load_tool('tools/train.py').main

    roots = reliability_toy_data
    first = write_run_config(str(tmp_path / 'first'), roots, max_iters=2, interval=2, validate=True)
    train_main([first])
    first_work = str(tmp_path / 'first' / 'work')
    best = glob.glob(osp.join(first_work, 'best_*.pth'))
    assert len(best) == 1
    checkpoint = load_complete(osp.join(first_work, 'iter_2.pth'))
    assert checkpoint['message_hub']['runtime_info']['best_ckpt'] == osp.basename(best[0])  # relative
    # The layout of a checkpoint written by mmengine's CheckpointHook, whose next best always wins.
    checkpoint['message_hub']['runtime_info'].update(best_ckpt=best[0], best_score=-1e9)
    absolute = str(tmp_path / 'absolute_record.pth')
    torch.save(checkpoint, absolute)
    before = snapshot(first_work)

    second = write_run_config(str(tmp_path / 'second'), roots, max_iters=4, interval=2, validate=True)
    train_main([second, '--resume', absolute])
    assert snapshot(first_work) == before
    second_work = tmp_path / 'second' / 'work'
    assert [p.name for p in second_work.glob('best_*.pth')] == [f'best_{BEST_KEY.replace("/", "_")}_iter_4.pth']
    log = open(sorted(glob.glob(str(second_work / '*' / '*.log')))[-1]).read()
    assert f'names {best[0]}, outside this run\'s checkpoint folder' in log
