"""SGGConcatDataset: which sources' train statistics reach the metainfo the loss reweighting reads."""
from speaq_mm.datasets import SGGConcatDataset, combine_statistics, source_names
from tests.sampler_fixtures import SamplerTestSource


def _sources():
    real = SamplerTestSource(4, 'real', fg_rel_count=(5, 0, 1), triplets=((0, 1, 0), (1, 0, 2)))
    synthetic = SamplerTestSource(3, 'synthetic', fg_rel_count=(0, 7, 2),
                                  triplets=((1, 1, 1), (0, 1, 0)))
    return real, synthetic


def test_default_uses_the_real_statistics_only():
    mix = SGGConcatDataset(list(_sources()))
    assert mix.metainfo['fg_rel_count'].tolist() == [5, 0, 1]
    assert mix.metainfo['obj_count'].tolist() == [4, 8]
    assert mix.metainfo['triplets'].tolist() == [[0, 1, 0], [1, 0, 2]]
    assert mix.metainfo['classes'] == ('a', 'b')


def test_switch_adds_the_synthetic_counts_whatever_the_dataset_order():
    real, synthetic = _sources()
    for parts in ([real, synthetic], [synthetic, real]):
        mix = SGGConcatDataset(parts, statistics_sources=['real', 'synthetic'])
        assert mix.metainfo['fg_rel_count'].tolist() == [5, 7, 3]
        assert mix.metainfo['obj_count'].tolist() == [7, 14]
        assert mix.metainfo['triplets'].tolist() == [[0, 1, 0], [1, 0, 2], [1, 1, 1]]
        assert mix.metainfo['split_counts'] == dict(train=dict(images=7, relations=15))


def test_synthetic_only_statistics():
    mix = SGGConcatDataset(list(_sources()), statistics_sources=['synthetic'])
    assert mix.metainfo['fg_rel_count'].tolist() == [0, 7, 2]


def test_combine_statistics_of_one_source_is_that_source():
    real, _ = _sources()
    combined = combine_statistics([real.metainfo])
    assert combined['fg_rel_count'].tolist() == [5, 0, 1] and combined['fg_rel_count'].dtype.name == 'int64'
    assert combined['split_counts'] == real.metainfo['split_counts']


def test_source_names():
    mix = SGGConcatDataset(list(_sources()))
    assert source_names(mix) == ['real', 'synthetic']
    assert source_names(_sources()[1]) == ['synthetic']
