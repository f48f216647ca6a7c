"""SGGRatioBatchSampler: exact global composition, per-rank balance, rotation and per-source passes."""
import math

import numpy as np
import pytest

from speaq_mm.datasets.samplers import largest_remainder_counts, split_over_ranks
from tests.sampler_fixtures import (
    RATIOS,
    assert_passes_without_repeats,
    check_batches,
    global_batches,
    make_sources,
    ratio_samplers,
)

SIZES = (23, 7)


@pytest.mark.parametrize('ratios, total, expected', [
    ([0.7, 0.3], 20, [14, 6]),       # the example; mmdet's MultiSourceSampler gives 16 + 4 on 4 x 5
    ([0.33, 0.67], 20, [7, 13]),     # quotas 6.6 / 13.4: the one leftover goes to the larger remainder
    ([7, 3], 5, [4, 1]),             # quotas 3.5 / 1.5: a tie goes to the earlier source
    ([1, 1, 1], 10, [4, 3, 3]),
    ([1, 0], 5, [5, 0]),
    ([0.1, 0.2, 0.7], 7, [1, 1, 5]),  # quotas 0.7 / 1.4 / 4.9: leftovers to sources 2 and 0
    ([0.3, 0.6, 0.1], 10, [3, 6, 1]),  # integer quotas stay integers despite binary floats
])
def test_largest_remainder_counts_hand_values(ratios, total, expected):
    assert largest_remainder_counts(ratios, total).tolist() == expected


def test_split_over_ranks_deals_leftovers_round_robin():
    # 14 + 6 over 4 ranks: 3 + 1 each, leftovers (0, 0, 1, 1) go to ranks first, first+1, ...
    assert split_over_ranks(np.array([14, 6]), 4, 0).tolist() == [[4, 1], [4, 1], [3, 2], [3, 2]]
    assert split_over_ranks(np.array([14, 6]), 4, 1).tolist() == [[3, 2], [4, 1], [4, 1], [3, 2]]
    assert split_over_ranks(np.array([7, 13]), 1, 0).tolist() == [[7, 13]]


def _settings():
    for world_size in range(1, 5):
        for batch_size in range(1, 21):
            for ratios in RATIOS:
                yield world_size, batch_size, ratios


@pytest.mark.parametrize('world_size', [1, 2, 3, 4])
def test_every_setting_is_exact_balanced_rotating_and_without_repeats(world_size):
    dataset = make_sources(SIZES)
    checked = 0
    for batch_size in range(1, 21):
        for ratios in RATIOS:
            quotas = [r / sum(ratios) * world_size * batch_size for r in ratios]
            expected = largest_remainder_counts(ratios, world_size * batch_size)
            assert all(abs(c - q) < 1 for c, q in zip(expected, quotas))
            if any(c == 0 < r for c, r in zip(expected, ratios)):
                # Too small for an exact share of every drawn source: refused at build time
                # (test_sampler_errors checks the message).
                with pytest.raises(ValueError, match='Nearest valid'):
                    ratio_samplers(dataset, batch_size, ratios, world_size)
                continue
            samplers = ratio_samplers(dataset, batch_size, ratios, world_size)
            # Enough batches for every drawn source to cycle twice, rounded up to whole rotations.
            passes = max(math.ceil(2 * size / count) for size, count in zip(SIZES, expected) if count)
            num_batches = world_size * math.ceil(passes / world_size)
            streams, rank_totals = check_batches(dataset, global_batches(samplers, 0, num_batches), expected,
                                                 batch_size)
            # Over whole rotations every rank received the same number of each source: no rank stays short.
            assert (rank_totals == rank_totals[0]).all()
            assert_passes_without_repeats(streams, SIZES)
            for count, stream in zip(expected, streams):
                assert len(stream) == count * num_batches
            checked += 1
    assert checked >= 70


def test_iteration_yields_len_batches_per_epoch_and_epochs_tile_the_stream():
    dataset = make_sources(SIZES)
    sampler, = ratio_samplers(dataset, 5, [0.7, 0.3], 1)
    # n = (4, 1) per batch: the real source needs ceil(23 / 4) = 6 batches, the synthetic ceil(7 / 1) = 7.
    assert len(sampler) == 7
    first_epoch = list(sampler)
    assert len(first_epoch) == 7
    sampler.sampler.set_epoch(2)  # mmengine's DistSamplerSeedHook reaches the epoch through .sampler
    assert list(sampler) == [sampler.rank_batch(t) for t in range(14, 21)]
    assert first_epoch == [sampler.rank_batch(t) for t in range(7)]


def test_infinite_mode_keeps_going_past_the_epoch():
    dataset = make_sources(SIZES)
    sampler, = ratio_samplers(dataset, 5, [0.7, 0.3], 1, infinite=True)
    iterator = iter(sampler)
    drawn = [next(iterator) for _ in range(3 * len(sampler))]
    assert drawn == [sampler.rank_batch(t) for t in range(3 * len(sampler))]


def test_num_batches_per_epoch_overrides_the_default():
    sampler, = ratio_samplers(make_sources(SIZES), 5, [0.7, 0.3], 1, num_batches_per_epoch=3)
    assert len(sampler) == 3 and len(list(sampler)) == 3


def test_sequence_depends_on_the_seed_only():
    dataset = make_sources(SIZES)
    first = global_batches(ratio_samplers(dataset, 6, [0.5, 0.5], 2, seed=5), 0, 10)
    again = global_batches(ratio_samplers(dataset, 6, [0.5, 0.5], 2, seed=5), 0, 10)
    other = global_batches(ratio_samplers(dataset, 6, [0.5, 0.5], 2, seed=6), 0, 10)
    assert first == again
    assert first != other


def test_single_source_training_through_the_same_path():
    dataset = make_sources(SIZES)
    samplers = ratio_samplers(dataset, 4, [1.0, 0.0], 3)
    for rank_batches in global_batches(samplers, 0, 12):
        assert all(index < SIZES[0] for batch in rank_batches for index in batch)


def test_three_sources_and_unnormalised_weights():
    dataset = make_sources((11, 5, 9), ('real', 'synthetic', 'extra'), (1.0, 0.5, 0.25))
    samplers = ratio_samplers(dataset, 7, [2, 1, 1], 3)
    expected = largest_remainder_counts([2, 1, 1], 21)
    assert expected.tolist() == [11, 5, 5]  # quotas 10.5 / 5.25 / 5.25
    streams, rank_totals = check_batches(dataset, global_batches(samplers, 0, 9), expected, 7)
    assert (rank_totals == rank_totals[0]).all()
    assert_passes_without_repeats(streams, (11, 5, 9))


def test_seed_defaults_to_the_runner_sampler_seed():
    from mmengine.dataset import DefaultSampler

    from speaq_mm.datasets.samplers import SGGRatioBatchSampler
    dataset = make_sources(SIZES)
    sampler = SGGRatioBatchSampler(DefaultSampler(dataset, seed=123), 4, [0.5, 0.5])
    assert sampler.seed == 123
    assert (sampler.rank, sampler.world_size) == (0, 1)  # get_dist_info() outside a process group
