"""Every invalid multi-source setting fails at build time with a message naming the key at fault."""
import pytest
from mmengine.dataset import DefaultSampler

from speaq_mm.datasets import SGGConcatDataset
from speaq_mm.datasets.samplers import SGGRatioBatchSampler
from tests.sampler_fixtures import SamplerTestSource, make_sources, ratio_samplers


def test_needs_a_concat_dataset():
    with pytest.raises(TypeError, match='ConcatDataset'):
        SGGRatioBatchSampler(DefaultSampler(SamplerTestSource(5, 'real'), seed=0), 2, [1.0])


@pytest.mark.parametrize('ratios, message', [
    ([0.7, 0.2, 0.1], r'source_ratio gives 3 ratio\(s\) for the 2 datasets'),
    ([0.7], r'source_ratio gives 1 ratio\(s\) for the 2 datasets'),
    ([0.7, -0.3], 'finite and non-negative'),
    ([float('nan'), 0.3], 'finite and non-negative'),
    ([0.0, 0.0], 'all zero'),
])
def test_bad_ratios(ratios, message):
    with pytest.raises(ValueError, match=message):
        ratio_samplers(make_sources(), 4, ratios, 1)


def test_ratios_must_be_numbers():
    with pytest.raises(TypeError, match='batch_sampler.source_ratio must map source names to numbers'):
        ratio_samplers(make_sources(), 4, ['a', 'b'], 1)
    with pytest.raises(TypeError, match='source_ratio must map source names to numbers'):
        ratio_samplers(make_sources(), 4, dict(real='a', synthetic=0.3), 1)
    with pytest.raises(TypeError, match=r'must be a dict of source name -> ratio \(e.g. dict\(real=0.7'):
        ratio_samplers(make_sources(), 4, 0.7, 1)


def test_empty_source_with_a_share_is_refused_and_without_one_is_fine():
    dataset = make_sources((6, 0))
    with pytest.raises(ValueError, match=r"dataset 1 of the ConcatDataset \(source='synthetic'\) is empty"):
        ratio_samplers(dataset, 4, [0.5, 0.5], 1)
    sampler, = ratio_samplers(dataset, 4, [1.0, 0.0], 1)
    assert all(index < 6 for index in sampler.rank_batch(3))


@pytest.mark.parametrize('ratios, world_size, batch_size, suggestion', [
    ([0.7, 0.3], 1, 1, 'with 1 rank(s): 2'),
    # 2 ranks x 1 at 0.9 / 0.1: quotas 1.8 / 0.2 give [2, 0]; a batch of 3 per rank gives [5, 1].
    ([0.9, 0.1], 2, 1, 'with 2 rank(s): 3'),
    # 1 x 5 at 0.9 / 0.1: quotas 4.5 / 0.5 tie and the tie goes to source 0; nothing smaller fits.
    ([0.9, 0.1], 1, 5, 'with 1 rank(s): 6'),
    # 1 x 6 at 0.45 / 0.45 / 0.1: quotas 2.7 / 2.7 / 0.6 give [3, 3, 0]; 5 gives [2, 2, 1], 7 gives [3, 3, 1].
    ([0.45, 0.45, 0.1], 1, 6, 'with 1 rank(s): 5 or 7'),
])
def test_batch_too_small_for_an_exact_share_names_the_nearest_valid_sizes(ratios, world_size, batch_size,
                                                                          suggestion):
    sources = ('real', 'synthetic', 'extra')[:len(ratios)]
    dataset = make_sources((10,) * len(ratios), sources, (1.0,) * len(ratios))
    with pytest.raises(ValueError) as error:
        ratio_samplers(dataset, batch_size, ratios, world_size)
    message = str(error.value)
    assert f'{world_size} x {batch_size} samples cannot hold an exact' in message
    assert "would get 0 samples" in message and "source='" in message
    assert message.endswith(suggestion)


@pytest.mark.parametrize('kwargs, message', [
    (dict(batch_size=0), 'train_dataloader.batch_size must be a positive integer'),
    (dict(rank=2, world_size=2), 'rank 2 is outside world size 2'),
    (dict(num_batches_per_epoch=0), 'num_batches_per_epoch must be a positive integer'),
    (dict(seed=-1), 'seed must be a non-negative integer'),
])
def test_bad_sampler_arguments(kwargs, message):
    args = dict(batch_size=4, rank=0, world_size=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SGGRatioBatchSampler(DefaultSampler(make_sources(), seed=0), source_ratio=[0.5, 0.5], **args)


def test_resume_state_with_other_sources_is_refused():
    sampler, = ratio_samplers(make_sources(), 4, [0.5, 0.5], 1)
    with pytest.raises(ValueError, match='state has 3 sources, the config has 2'):
        sampler.load_state_dict(dict(seed=0, next_batch=3, stream_positions=[1, 2, 3]))


def test_statistics_sources_must_exist_and_have_statistics():
    parts = [SamplerTestSource(4, 'real'), SamplerTestSource(4, 'synthetic')]
    with pytest.raises(ValueError, match=r"statistics_sources \['vg'\] match no dataset; the sources are "
                                         r"\['real', 'synthetic'\]"):
        SGGConcatDataset(parts, statistics_sources=['vg'])
    with pytest.raises(ValueError, match='non-empty list of source names'):
        SGGConcatDataset(parts, statistics_sources='real')
    bare = SamplerTestSource(4, 'synthetic')
    for key in ('fg_rel_count', 'obj_count', 'triplets', 'split_counts'):
        del bare._metainfo[key]
    with pytest.raises(ValueError, match=r'source "synthetic" has no \[.fg_rel_count'):
        SGGConcatDataset([SamplerTestSource(4, 'real'), bare], statistics_sources=['real', 'synthetic'])
    # Left out of the statistics, a source needs none.
    real_only = SGGConcatDataset([SamplerTestSource(4, 'real'), bare])
    assert real_only.metainfo['fg_rel_count'].tolist() == [1, 2, 3]


def test_every_source_needs_a_name():
    nameless = SamplerTestSource(4, 'real')
    del nameless.source
    with pytest.raises(AttributeError, match='no "source" name'):
        SGGConcatDataset([SamplerTestSource(4, 'real'), nameless])


def test_vocabulary_must_still_match():
    other = SamplerTestSource(4, 'synthetic')
    other._metainfo['predicates'] = ('p', 'q', 'x')
    with pytest.raises(ValueError, match='does not match'):
        SGGConcatDataset([SamplerTestSource(4, 'real'), other])



def test_any_number_of_sources_by_name():
    """Three sources: ratios and sample weights keyed by name, in any order, reach the right datasets."""
    dataset = SGGConcatDataset([SamplerTestSource(20, 'real'), SamplerTestSource(9, 'synthetic'),
                                SamplerTestSource(6, 'web')], sample_weights=dict(web=0.25, synthetic=0.5))
    assert [part.sample_weight for part in dataset.datasets] == [1.0, 0.5, 0.25]
    assert [dataset.get_data_info(i)['sample_weight'] for i in (0, 20, 29)] == [1.0, 0.5, 0.25]
    sampler, = ratio_samplers(dataset, 10, dict(web=0.1, real=0.6, synthetic=0.3), 1)
    assert sampler.source_counts.tolist() == [6, 3, 1]
    batch = sampler.rank_batch(0)
    assert [sum(lo <= i < hi for i in batch) for lo, hi in ((0, 20), (20, 29), (29, 35))] == [6, 3, 1]
