"""Gradient accumulation (docs/distributed.md, "Gradient accumulation"): the ratio sampler keeps the exact mix
over each optimizer step's micro-batches, the run config hands it the optimizer wrapper's count, and one
process accumulating 4 micro-batches makes the same optimizer step as 4 gloo processes with 1 each."""
import socket
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from speaq_mm.datasets.samplers import SGGRatioBatchSampler
from speaq_mm.engine.runner import load_run_config
from tests.sampler_fixtures import REPO_ROOT, run_torchrun

SIZES = (140, 60)


def _sampler(world_size, rank, accumulative_counts, batch_size=5, sizes=SIZES):
    dataset = SimpleNamespace(cumulative_sizes=[sizes[0], sum(sizes)],
                              datasets=[list(range(sizes[0])), list(range(sizes[1]))])
    return SGGRatioBatchSampler(SimpleNamespace(dataset=dataset, seed=7), batch_size, [0.7, 0.3], rank=rank,
                                world_size=world_size, accumulative_counts=accumulative_counts)


def _source_counts(batches):
    return Counter('real' if index < SIZES[0] else 'synthetic' for batch in batches for index in batch)


def test_every_accumulated_global_batch_holds_14_real_and_6_synthetic():
    one_gpu = _sampler(1, 0, 4)
    assert len(one_gpu) == 4 * 10  # micro-batches: 10 optimizer steps cover the 140 real images
    for step in range(25):
        micro_batches = [one_gpu.rank_batch(4 * step + a) for a in range(4)]
        assert [len(batch) for batch in micro_batches] == [5] * 4
        assert _source_counts(micro_batches) == {'real': 14, 'synthetic': 6}
        # 4 GPUs x 5 draw exactly the same images, with the same augmentation seeds.
        four_gpus = [_sampler(4, rank, 1).rank_batch(step) for rank in range(4)]
        assert micro_batches == four_gpus
        assert [[i.seed for i in b] for b in micro_batches] == [[i.seed for i in b] for b in four_gpus]
    # Per micro-batch the mix cannot be 3.5 + 1.5: it alternates, and which micro-batch gets 4 real rotates.
    real = [[_source_counts([one_gpu.rank_batch(4 * step + a)])['real'] for a in range(4)] for step in range(4)]
    assert all(sorted(r) == [3, 3, 4, 4] for r in real) and real[0] != real[1]


def test_two_gpus_accumulating_two_hold_the_mix_per_optimizer_step():
    samplers = [_sampler(2, rank, 2) for rank in range(2)]
    for step in range(10):
        batches = [s.rank_batch(2 * step + a) for s in samplers for a in range(2)]
        assert _source_counts(batches) == {'real': 14, 'synthetic': 6}
        assert len({i for b in batches for i in b}) == 20


def test_resume_inside_a_window_continues_the_stream():
    sampler = _sampler(1, 0, 4)
    state = sampler.state_dict(8)  # the start of optimizer step 2
    resumed = _sampler(1, 0, 4)
    resumed.load_state_dict(state)
    assert [resumed.rank_batch(t) for t in range(8, 16)] == [sampler.rank_batch(t) for t in range(8, 16)]


def test_a_global_batch_too_small_for_the_mix_names_accumulation():
    with pytest.raises(ValueError, match='1 x 1 x 2 accumulated'):
        _sampler(1, 0, 2, batch_size=1, sizes=(10, 1)).__class__(
            SimpleNamespace(dataset=SimpleNamespace(cumulative_sizes=[10, 11], datasets=[list(range(10)), [0]]),
                            seed=0), 1, [0.95, 0.05], rank=0, world_size=1, accumulative_counts=2)


def test_run_config_gives_the_sampler_the_optimizer_wrappers_count(tmp_path):
    config = f'{REPO_ROOT}/configs/speaq_multi_accumulate.py'
    cfg = load_run_config(config, work_dir=str(tmp_path))
    assert cfg.optim_wrapper.accumulative_counts == 4
    assert cfg.train_dataloader.batch_size == 5
    assert cfg.train_dataloader.batch_sampler.accumulative_counts == 4
    assert cfg.model.bbox_head.criterion.match_normaliser == 'per_micro_batch'
    cfg = load_run_config(config, {'optim_wrapper.accumulative_counts': 2}, work_dir=str(tmp_path))
    assert cfg.train_dataloader.batch_sampler.accumulative_counts == 2
    with pytest.raises(ValueError, match='set only the optimizer wrapper'):
        load_run_config(config, {'train_dataloader.batch_sampler.accumulative_counts': 3}, work_dir=str(tmp_path))


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _one_step(tmp_path, nproc, accumulative_counts):
    out = tmp_path / f'{nproc}x{accumulative_counts}.pth'
    result = run_torchrun(f'{REPO_ROOT}/tests/dist_accumulation_check.py', nproc,
                          [str(out), '--accumulative-counts', str(accumulative_counts)], port=_free_port())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return torch.load(out)


@pytest.mark.slow
def test_one_process_accumulating_four_equals_four_gloo_processes(tmp_path):
    accumulated = _one_step(tmp_path, 1, 4)
    distributed = _one_step(tmp_path, 4, 1)
    # The same 20 images, 14 + 6, in the same (micro-batch, rank) slots.
    assert accumulated['batches'][0] == [rank[0] for rank in distributed['batches']]
    images = [i for batch in accumulated['batches'][0] for i in batch]
    assert sorted(images) == list(range(20))
    assert Counter(accumulated['sources'][i] for i in images) == {'real': 14, 'synthetic': 6}
    largest_update = 0.0
    for name, initial in accumulated['initial'].items():
        torch.testing.assert_close(distributed['initial'][name], initial, rtol=0, atol=0)
        step = accumulated['params'][name] - initial
        torch.testing.assert_close(distributed['params'][name] - initial, step, rtol=1e-4, atol=1e-6,
                                   msg=lambda m, name=name: f'{name}: {m}')
        largest_update = max(largest_update, step.abs().max().item())
    assert largest_update > 1e-3  # the step moved the weights
