"""The mix configs: their settings, --cfg-options, and the real dataloader built from toy_mix.py."""
import copy
import math

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from speaq_mm.datasets.samplers import largest_remainder_counts
from speaq_mm.engine import load_run_config
from tests.sampler_fixtures import (
    RATIOS,
    REPO_ROOT,
    TOY_MIX_CONFIG,
    assert_passes_without_repeats,
    check_batches,
    toy_mix_options,
)

DATASET_CONFIGS = f'{REPO_ROOT}/configs/_base_/datasets'
TOY_MIX_RECIPE = f'{REPO_ROOT}/configs/toy/speaq_tiny_toy_mix.py'  # the `make demo` recipe, built on toy_mix.py
SEED = 42


def load_mix(options):
    """toy_mix.py with ``options`` applied the way tools/train.py applies --cfg-options."""
    return load_run_config(TOY_MIX_CONFIG, options, work_dir='unused')


def build_mix_dataset(cfg, light=True):
    """The ConcatDataset of the config; ``light`` replaces each pipeline so items are the raw records."""
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if light:
        for part in dataset_cfg.datasets:
            part.pipeline = []
    return DATASETS.build(dataset_cfg)


def rank_dataloaders(cfg, dataset, batch_size, ratios, world_size, **sampler_args):
    """The config's train dataloader once per simulated rank, over an already built ``dataset``."""
    loaders = []
    for rank in range(world_size):
        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        loader_cfg.dataset = dataset
        loader_cfg.batch_size = batch_size
        loader_cfg.batch_sampler.pop('source_ratio')  # replaced, not merged with the config's ratio dict
        loader_cfg.batch_sampler.update(source_ratio=ratios, rank=rank, world_size=world_size, **sampler_args)
        loader_cfg.collate_fn = dict(type=list)  # raw records: their instance lists differ in length
        loaders.append(Runner.build_dataloader(loader_cfg, seed=SEED))
    return loaders


def concat_index(dataset, record):
    source = [part.source for part in dataset.datasets].index(record['source'])
    return int(np.concatenate([[0], dataset.cumulative_sizes])[source]) + record['sample_idx']


def draw(dataset, loaders, num_batches):
    """``num_batches`` global batches from the rank dataloaders: per-rank lists of ConcatDataset indices."""
    iterators = [iter(loader) for loader in loaders]
    steps = []
    for _ in range(num_batches):
        records = [next(iterator) for iterator in iterators]
        for batch in records:
            for record in batch:
                assert record['sample_weight'] == {'real': 1.0, 'synthetic': 0.5}[record['source']]
        steps.append([[concat_index(dataset, record) for record in batch] for batch in records])
    return steps


def test_default_mix_settings(toy_roots):
    cfg = load_mix(toy_mix_options(toy_roots))
    assert cfg.train_dataloader.batch_sampler.type == 'SGGRatioBatchSampler'
    assert cfg.train_dataloader.batch_sampler.source_ratio == dict(real=0.7, synthetic=0.3)
    assert cfg.train_dataloader.dataset.sample_weights == dict(real=1.0, synthetic=0.5)
    assert [d.source for d in cfg.train_dataloader.dataset.datasets] == ['real', 'synthetic']
    assert cfg.train_dataloader.dataset.statistics_sources == ['real']
    recipe = load_run_config(TOY_MIX_RECIPE, work_dir='unused')
    assert recipe.default_hooks.source_mix == dict(type='SGGSourceMixHook')
    assert 'custom_hooks' not in recipe


def test_cfg_options_reach_every_mix_setting_by_source_name(toy_roots):
    sampler, dataset = 'train_dataloader.batch_sampler', 'train_dataloader.dataset'
    cfg = load_mix(toy_mix_options(toy_roots, **{
        f'{sampler}.source_ratio.real': 0.5, f'{sampler}.source_ratio.synthetic': 0.5,
        f'{dataset}.sample_weights.synthetic': 0.25, f'{dataset}.statistics_sources': ['real', 'synthetic']}))
    assert cfg.train_dataloader.batch_sampler.source_ratio == dict(real=0.5, synthetic=0.5)
    assert cfg.train_dataloader.dataset.sample_weights == dict(real=1.0, synthetic=0.25)
    assert cfg.train_dataloader.dataset.statistics_sources == ['real', 'synthetic']
    built = build_mix_dataset(cfg)
    assert [part.sample_weight for part in built.datasets] == [1.0, 0.25]


def test_an_override_of_a_used_variable_is_refused_naming_the_keys(toy_roots):
    def load_mix(options):
        return load_run_config(TOY_MIX_RECIPE, options, work_dir='unused')

    with pytest.raises(KeyError, match=r'"max_iters" is a variable') as error:
        load_mix(toy_mix_options(toy_roots, max_iters=5))
    assert {'train_cfg.max_iters', 'param_scheduler.0.end', 'default_hooks.checkpoint.interval'} <= set(
        str(error.value).split('instead: ')[1].rstrip(".'").split(', '))
    with pytest.raises(KeyError, match=r'"image_size" is a variable.*pipeline\.\d+\.scale\.0'):
        load_mix(toy_mix_options(toy_roots, image_size=32))
    with pytest.raises(KeyError, match=r'"real_train_dataset" is a variable.*datasets\.0\.data_root'):
        load_mix(toy_mix_options(toy_roots, **{'real_train_dataset.data_root': 'elsewhere/'}))
    for key in ('val_interval', 'data_root', 'num_val_images'):
        with pytest.raises(KeyError, match=f'"{key}" is a variable'):
            load_mix(toy_mix_options(toy_roots, **{key: 3}))


@pytest.mark.parametrize('names, message', [
    (dict(real=0.7, synthetc=0.3), r"\['synthetc'\] match no dataset and \['synthetic'\] have no ratio.*"
                                   r"sources are \['real', 'synthetic'\]"),
    (dict(real=1.0), r"\['synthetic'\] have no ratio \(0 leaves a source out\)")])
def test_a_ratio_name_that_matches_no_dataset_is_an_error_listing_the_names(toy_roots, names, message):
    cfg = load_mix(toy_mix_options(toy_roots))
    dataset = build_mix_dataset(cfg)
    with pytest.raises(ValueError, match=message):
        rank_dataloaders(cfg, dataset, 4, names, 1)
    with pytest.raises(ValueError, match=r"sample_weights \['vg'\] match no dataset; the sources are"):
        build_mix_dataset(load_mix(toy_mix_options(toy_roots, **{'train_dataloader.dataset.sample_weights.vg': 1})))


@pytest.mark.parametrize('mix, real, synthetic', [('toy_mix', 'toy_real', 'toy_synthetic'),
                                                  ('vg_synthetic_mix', 'vg150', 'synthetic_genome')])
def test_mix_trains_on_the_single_dataset_configs_train_sets(mix, real, synthetic):
    def train_set(name):
        return Config.fromfile(f'{DATASET_CONFIGS}/{name}.py').train_dataloader.dataset.to_dict()

    mix_cfg = Config.fromfile(f'{DATASET_CONFIGS}/{mix}.py')
    assert [d.to_dict() for d in mix_cfg.train_dataloader.dataset.datasets] == [train_set(real),
                                                                                train_set(synthetic)]
    assert mix_cfg.val_dataloader.dataset.to_dict() == Config.fromfile(
        f'{DATASET_CONFIGS}/{real}.py').val_dataloader.dataset.to_dict()


@pytest.mark.parametrize('world_size', [1, 2, 3, 4])
def test_real_dataloader_from_the_config_is_exact_for_every_setting(toy_roots, world_size):
    cfg = load_mix(toy_mix_options(toy_roots))
    dataset = build_mix_dataset(cfg)
    sizes = [len(part) for part in dataset.datasets]
    checked = 0
    for batch_size in range(1, 21):
        for ratios in RATIOS:
            expected = largest_remainder_counts(ratios, world_size * batch_size)
            if any(c == 0 < r for c, r in zip(expected, ratios)):
                with pytest.raises(ValueError, match='Nearest valid train_dataloader.batch_size'):
                    rank_dataloaders(cfg, dataset, batch_size, ratios, world_size)
                continue
            loaders = rank_dataloaders(cfg, dataset, batch_size, ratios, world_size, infinite=True)
            # Every drawn source cycles at least once, in whole rotations of the leftover samples.
            passes = max(math.ceil(size / count) for size, count in zip(sizes, expected) if count)
            num_batches = world_size * math.ceil(passes / world_size)
            streams, rank_totals = check_batches(dataset, draw(dataset, loaders, num_batches), expected,
                                                 batch_size)
            assert (rank_totals == rank_totals[0]).all()
            assert_passes_without_repeats(streams, sizes)
            checked += 1
    assert checked >= 70


def test_real_dataloader_resumes_identically(toy_roots):
    cfg = load_mix(toy_mix_options(toy_roots))
    dataset = build_mix_dataset(cfg)

    def loaders(**sampler_args):
        return rank_dataloaders(cfg, dataset, 4, [0.33, 0.67], 3, **sampler_args)

    length = len(loaders()[0])
    # IterBasedTrainLoop resumes with a new iterator and draws and discards the trained batches.
    uninterrupted = draw(dataset, loaders(infinite=True), 2 * length)
    assert draw(dataset, loaders(infinite=True), 2 * length)[5:] == uninterrupted[5:]

    # EpochBasedTrainLoop: DistSamplerSeedHook sets the epoch through batch_sampler.sampler before each epoch.
    running = loaders()
    first_epoch = draw(dataset, running, length)
    for loader in running:
        loader.batch_sampler.sampler.set_epoch(1)
    second_epoch = draw(dataset, running, length)
    resumed = loaders()
    for loader in resumed:
        loader.batch_sampler.sampler.set_epoch(1)
    assert draw(dataset, resumed, length) == second_epoch
    # The epochs are consecutive stretches of the stream the infinite mode yields.
    assert first_epoch + second_epoch == uninterrupted


def test_packed_samples_carry_source_and_sample_weight(toy_roots):
    """The full pipeline: every packed sample reaching the model has its source's metainfo."""
    cfg = load_mix(toy_mix_options(toy_roots, **{'train_dataloader.dataset.sample_weights.synthetic': 0.25}))
    dataset = build_mix_dataset(cfg, light=False)
    for rank in range(2):
        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        loader_cfg.update(dataset=dataset, batch_size=5)
        loader_cfg.batch_sampler.update(rank=rank, world_size=2)
        batches = iter(Runner.build_dataloader(loader_cfg, seed=SEED))
        for step in range(3):
            samples = next(batches)['data_samples']
            weights = [(s.metainfo['source'], s.metainfo['sample_weight']) for s in samples]
            real_share = 4 if (step + rank) % 2 == 0 else 3  # 7 + 3 over 2 ranks, the leftover rotating
            assert weights == [('real', 1.0)] * real_share + [('synthetic', 0.25)] * (5 - real_share)


@pytest.mark.parametrize('statistics_sources', [['real'], ['real', 'synthetic']])
def test_statistics_switch_on_the_toy_sets(toy_roots, statistics_sources):
    cfg = load_mix(toy_mix_options(toy_roots, **{'train_dataloader.dataset.statistics_sources': statistics_sources}))
    dataset = build_mix_dataset(cfg)
    real, synthetic = (part.metainfo['fg_rel_count'] for part in dataset.datasets)
    expected = real + synthetic if 'synthetic' in statistics_sources else real
    assert dataset.metainfo['fg_rel_count'].tolist() == expected.tolist()
    assert synthetic.sum() > 0
