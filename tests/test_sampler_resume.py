"""Resume continues the batches: in the sampler alone; through mmengine's Runner with SGGSourceMixHook."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tests.sampler_fixtures import assert_passes_without_repeats, global_batches, make_sources, ratio_samplers

SIZES = (23, 7)


@pytest.mark.parametrize('world_size, batch_size, ratios', [(1, 5, [0.7, 0.3]), (3, 4, [0.33, 0.67]),
                                                            (4, 5, [0.5, 0.5]), (2, 3, [1.0, 0.0])])
def test_fresh_sampler_replayed_like_iter_based_loop_continues_identically(world_size, batch_size, ratios):
    """IterBasedTrainLoop resumes by drawing and discarding ``iter`` batches from a new iterator."""
    dataset = make_sources(SIZES)
    uninterrupted = [iter(s) for s in ratio_samplers(dataset, batch_size, ratios, world_size, infinite=True)]
    expected = [[next(it) for it in uninterrupted] for _ in range(40)]
    resumed = [iter(s) for s in ratio_samplers(dataset, batch_size, ratios, world_size, infinite=True)]
    for _ in range(17):
        [next(it) for it in resumed]
    assert [[next(it) for it in resumed] for _ in range(23)] == expected[17:]


def test_saved_state_restores_the_sequence_and_the_seed():
    dataset = make_sources(SIZES)
    before = ratio_samplers(dataset, 5, [0.7, 0.3], 4, seed=11)
    state = before[0].state_dict(next_batch=9)
    after = ratio_samplers(dataset, 5, [0.7, 0.3], 4, seed=99)  # e.g. randomness.seed changed in the config
    for sampler in after:
        sampler.load_state_dict(state)
    assert global_batches(after, 9, 12) == global_batches(before, 9, 12)
    assert global_batches(after, 0, 9) == global_batches(before, 0, 9)  # the discarded replay is untouched


def test_state_continues_every_source_when_batch_size_and_world_size_change():
    """A resumed run on other GPUs or with another batch keeps drawing each source's pass where it stopped."""
    dataset = make_sources(SIZES)
    before = ratio_samplers(dataset, 5, [0.7, 0.3], 4, seed=3)   # 14 + 6 per global batch
    after = ratio_samplers(dataset, 4, [0.7, 0.3], 2, seed=3)    # 6 + 2 per global batch
    for sampler in after:
        sampler.load_state_dict(before[0].state_dict(next_batch=5))
    drawn = global_batches(before, 0, 5) + global_batches(after, 5, 20)
    streams = [[i for step in drawn for batch in step for i in batch if (i < SIZES[0]) == (s == 0)]
               for s in range(2)]
    assert_passes_without_repeats(streams, SIZES)
    assert len(streams[0]) == 5 * 14 + 20 * 6


def _runner_config(work_dir, batch_size=10, seed=7, loop=None, hooks=True, checkpoint_interval=3,
                   iter_loop='IterBasedTrainLoop'):
    return Config(dict(
        default_scope='mmdet',
        work_dir=work_dir,
        # Runners started within one second would otherwise share a logger and a message hub.
        experiment_name=work_dir.replace('/', '_'),
        model=dict(type='SamplerTestRecorder'),
        train_dataloader=dict(
            batch_size=batch_size,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_sampler=dict(type='SGGRatioBatchSampler', source_ratio=[0.7, 0.3],
                               infinite=loop is None),
            dataset=dict(type='SGGConcatDataset', datasets=[
                dict(type='SamplerTestSource', size=SIZES[0], source='real'),
                dict(type='SamplerTestSource', size=SIZES[1], source='synthetic')],
                sample_weights=dict(real=1.0, synthetic=0.5))),
        train_cfg=loop or dict(type=iter_loop, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=checkpoint_interval, by_epoch=loop is not None),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=[dict(type='SGGSourceMixHook'), dict(type='SpeaQExactResumeHook')] if hooks else [],
        log_processor=dict(by_epoch=loop is not None),
        randomness=dict(seed=seed)))


def _train(cfg, resume_from=None):
    cfg = copy.deepcopy(cfg)
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, resume_from
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


LOOPS = ['IterBasedTrainLoop', 'SpeaQIterBasedTrainLoop']  # mmengine's replay; our index-level skip


@pytest.mark.parametrize('iter_loop', LOOPS)
@pytest.mark.parametrize('hooks', [True, False])
def test_iter_based_resume_trains_on_the_same_batches(tmp_path, hooks, iter_loop):
    cfg = _runner_config(str(tmp_path / 'run'), hooks=hooks, iter_loop=iter_loop)
    seen = _train(cfg).model.seen
    resumed = _train(_runner_config(str(tmp_path / 'resumed'), hooks=hooks, iter_loop=iter_loop),
                     resume_from=osp.join(str(tmp_path / 'run'), 'iter_3.pth')).model.seen
    assert len(seen) == 6 and resumed == seen[3:]


@pytest.mark.parametrize('iter_loop', LOOPS)
def test_resume_keeps_the_sampler_seed_of_the_checkpoint(tmp_path, iter_loop):
    seen = _train(_runner_config(str(tmp_path / 'run'), seed=7, iter_loop=iter_loop)).model.seen
    resumed = _train(_runner_config(str(tmp_path / 'resumed'), seed=8, iter_loop=iter_loop),
                     resume_from=osp.join(str(tmp_path / 'run'), 'iter_3.pth')).model.seen
    assert resumed == seen[3:]


@pytest.mark.parametrize('iter_loop', LOOPS)
def test_resume_with_another_batch_size_continues_each_source(tmp_path, iter_loop):
    seen = _train(_runner_config(str(tmp_path / 'run'), batch_size=10, iter_loop=iter_loop)).model.seen
    resumed = _train(_runner_config(str(tmp_path / 'resumed'), batch_size=4, iter_loop=iter_loop),
                     resume_from=osp.join(str(tmp_path / 'run'), 'iter_3.pth')).model.seen
    drawn = seen[:3] + resumed
    streams = [[int(uid.split('/')[1]) + offset for batch in drawn for uid in batch if uid.startswith(name)]
               for name, offset in (('real', 0), ('synthetic', SIZES[0]))]
    assert_passes_without_repeats(streams, SIZES)
    assert [len(batch) for batch in drawn] == [10] * 3 + [4] * 3


def test_epoch_based_resume_trains_on_the_same_batches(tmp_path):
    loop = dict(type='EpochBasedTrainLoop', max_epochs=3)
    runner = _train(_runner_config(str(tmp_path / 'run'), loop=loop, checkpoint_interval=1))
    epoch_length = len(runner.train_dataloader)
    assert epoch_length == 4  # 7 + 3 per batch of 10: ceil(23 / 7) = 4, ceil(7 / 3) = 3
    seen = runner.model.seen
    resumed = _train(_runner_config(str(tmp_path / 'resumed'), loop=loop, checkpoint_interval=1),
                     resume_from=osp.join(str(tmp_path / 'run'), 'epoch_2.pth')).model.seen
    assert len(seen) == 3 * epoch_length and resumed == seen[2 * epoch_length:]
    # Epochs are consecutive stretches of one stream: the synthetic source cycles on across epoch ends.
    synthetic = [uid for batch in seen for uid in batch if uid.startswith('synthetic')]
    assert all(sorted(synthetic[k:k + 7]) == sorted(f'synthetic/{i}' for i in range(7))
               for k in range(0, len(synthetic) - 6, 7))


def test_hook_logs_source_fractions_and_mean_weights(tmp_path):
    runner = _train(_runner_config(str(tmp_path / 'run'), batch_size=10))
    hub = runner.message_hub
    assert hub.get_scalar('train/source_frac_real').current() == pytest.approx(0.7)
    assert hub.get_scalar('train/source_frac_synthetic').current() == pytest.approx(0.3)
    assert hub.get_scalar('train/source_weight_real').current() == pytest.approx(1.0)
    assert hub.get_scalar('train/source_weight_synthetic').current() == pytest.approx(0.5)
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'source_frac_synthetic: 0.3000' in log and 'source_weight_synthetic: 0.5000' in log


def test_hook_refuses_an_infinite_sampler_in_epoch_based_training(tmp_path):
    cfg = _runner_config(str(tmp_path / 'run'), loop=dict(type='EpochBasedTrainLoop', max_epochs=1))
    cfg.train_dataloader.batch_sampler.infinite = True
    with pytest.raises(ValueError, match='infinite=True never ends an epoch'):
        _train(cfg)


def test_hook_needs_source_and_sample_weight_in_the_samples(tmp_path, monkeypatch):
    from tests.sampler_fixtures import SamplerTestSource
    original = SamplerTestSource.prepare_data

    def without_weight(self, idx):
        data = original(self, idx)
        del data['data_samples'].sample_weight
        return data

    monkeypatch.setattr(SamplerTestSource, 'prepare_data', without_weight)
    with pytest.raises(KeyError, match=r"\(source '(real|synthetic)'\) has no sample_weight in its metainfo"):
        _train(_runner_config(str(tmp_path / 'run')))


class _ShapedImages:
    """23 records of alternating portrait and landscape images: the aspect-ratio buckets fill unevenly."""

    def __init__(self, size=23):
        self.size = size

    def __len__(self):
        return self.size

    def get_data_info(self, idx):
        return dict(width=100 if idx % 3 else 50, height=80)


def test_aspect_ratio_batches_resume_at_any_batch_with_the_same_seeds():
    from mmengine.dataset import DefaultSampler

    from speaq_mm.datasets.samplers import SGGAspectRatioBatchSampler
    dataset = _ShapedImages()

    def fresh():
        return SGGAspectRatioBatchSampler(DefaultSampler(dataset, shuffle=True, seed=3), batch_size=4)

    def draws(batch_sampler, first_epoch, epochs):
        batches = []
        for epoch in range(first_epoch, first_epoch + epochs):
            if epoch > first_epoch:
                batch_sampler.sampler.set_epoch(epoch)
            batches += [[(int(i), i.seed) for i in batch] for batch in batch_sampler]
        return batches

    straight = fresh()
    straight.sampler.set_epoch(0)
    reference = draws(straight, 0, 4)
    per_epoch = len(reference) // 4
    assert len({seed for batch in reference for _, seed in batch}) == sum(len(b) for b in reference)  # all distinct
    for start in (0, 2, per_epoch - 1, per_epoch, 2 * per_epoch + 3):
        resumed = fresh()
        epoch = resumed.resume_at(start)
        assert epoch == start // per_epoch
        assert draws(resumed, epoch, 4 - epoch)[:len(reference) - start] == reference[start:]


@pytest.mark.parametrize('drop_last', [False, True])
def test_aspect_ratio_batches_are_mmdets_whatever_pass_was_abandoned_before(drop_last):
    """A pass run to its end gives mmdet's batches; a pass abandoned part-way (a dataloader iterator that
    prefetched and was dropped, as before every resume) changes neither the next pass nor ``resume_at``."""
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    from mmengine.dataset import DefaultSampler

    from speaq_mm.datasets.samplers import SGGAspectRatioBatchSampler
    dataset = _ShapedImages()

    def fresh(kind=SGGAspectRatioBatchSampler):
        return kind(DefaultSampler(dataset, shuffle=True, seed=3), batch_size=4, drop_last=drop_last)

    def as_ints(batches):
        return [[int(i) for i in batch] for batch in batches]

    mmdets = as_ints(fresh(AspectRatioBatchSampler))
    assert as_ints(fresh()) == mmdets and len(mmdets) > 3
    sampler = fresh()
    abandoned = iter(sampler)
    next(abandoned), next(abandoned)
    assert as_ints(sampler) == mmdets
    resumed = fresh()
    abandoned = iter(resumed)
    next(abandoned), next(abandoned)
    assert resumed.resume_at(len(mmdets) + 1) == 1  # the first pass does not count the abandoned indices
    resumed.sampler.set_epoch(1)
    straight = fresh()
    straight.sampler.set_epoch(1)
    assert as_ints(resumed) == as_ints(straight)[1:]
