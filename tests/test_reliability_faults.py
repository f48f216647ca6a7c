"""Fault matrix: every fault in a toy run of the shipped recipe ends in a clear error or a logged recovery.

(A full disk while saving is in tests/test_reliability_atomic_io.py; a kill during a save in
tests/test_reliability_resume.py.)
"""
import glob
import os
import os.path as osp
import re

import h5py
import numpy as np
import pytest
import torch
from mmdet.registry import DATA_SAMPLERS, DATASETS, HOOKS, MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from speaq_mm.datasets import VGFormatError
from speaq_mm.datasets.transforms.loading import SGGLoadImageFromFile, UnreadableImageError
from speaq_mm.engine import build_runner, load_run_config
from speaq_mm.engine.hooks.checkpoint_compatibility_hook import CheckpointMismatchError
from tests.datasets_fixtures import edit_h5, load_tool
from tests.reliability_fixtures import (
    copy_toy_data,
    expected_batches,
    load_complete,
    read_records,
    write_run_config,
)


@pytest.fixture
def damaged_data(tmp_path, reliability_toy_data):
    """A private copy of the toy sets that a test may damage."""
    return copy_toy_data(reliability_toy_data, str(tmp_path / 'data'))


def train(config):
    """Build and train the run of ``config`` in this process (what tools/train.py does); return the runner."""
    cfg = load_run_config(config)
    cfg.experiment_name = osp.basename(osp.dirname(config))
    runner = build_runner(cfg)
    runner.train()
    return runner


def log_of(folder):
    return open(sorted(glob.glob(osp.join(folder, 'work', '*', '*.log')))[-1]).read()


def trained(folder):
    return [r for r in read_records(osp.join(folder, 'records')) if r['event'] == 'train']


@pytest.mark.slow
def test_truncated_h5_names_the_file(tmp_path, damaged_data):
    h5_path = osp.join(damaged_data['synthetic'], 'VG-SGG-with-attri.h5')
    size = os.path.getsize(h5_path)
    with open(h5_path, 'r+b') as f:
        f.truncate(size // 2)
    config = write_run_config(str(tmp_path), damaged_data, validate=False)
    with pytest.raises(VGFormatError, match=re.escape(f'{h5_path}: cannot open the h5 file') + '.*truncated'):
        train(config)


@pytest.mark.slow
def test_every_relation_filtered_out_of_the_dataset(tmp_path, damaged_data):
    h5_path = osp.join(damaged_data['real'], 'VG-SGG-with-attri.h5')
    with h5py.File(h5_path, 'r') as h5:
        rows = len(h5['split'])
    no_relations = np.full(rows, -1, dtype=np.int32)
    edit_h5(h5_path, img_to_first_rel=no_relations, img_to_last_rel=no_relations)
    config = write_run_config(str(tmp_path), damaged_data, validate=False)
    with pytest.raises(ValueError, match='split "train" of .*VG-SGG-with-attri.h5 is empty.*filter_empty_rels=True'):
        train(config)


@pytest.mark.slow
def test_every_relation_filtered_out_by_the_pipeline(tmp_path, damaged_data):
    """A minimum box size that removes every box takes every relation with it: stopped, not trained on."""
    folder = str(tmp_path)
    extra = 'train_pipeline[5] = dict(type="SGGFilterEmptyInstances", min_size=10000)'  # in every dataset
    config = write_run_config(folder, damaged_data, max_iters=4, validate=False, extra=extra)
    assert Config.fromfile(config).train_dataloader.dataset.datasets[0].pipeline[5].min_size == 10000
    with pytest.raises(RuntimeError, match='iteration 2: the training batch has no ground-truth relation.*'
                                           'Every relation is being filtered out'):
        train(config)
    assert 'iteration 1: the training batch has no ground-truth relation' in log_of(folder)
    assert [r['iter'] for r in trained(folder)] == [1]


@pytest.mark.slow
def test_every_relation_of_one_source_filtered_out_by_its_pipeline(tmp_path, damaged_data):
    """Only the synthetic source's pipeline drops every box: the real samples keep every batch's relation count
    above 0, yet the run stops, naming the synthetic source."""
    folder = str(tmp_path)
    extra = ('train_dataloader["dataset"]["datasets"][1]["pipeline"] = train_pipeline[:5] + '
             '[dict(type="SGGFilterEmptyInstances", min_size=10000)] + train_pipeline[6:]')
    config = write_run_config(folder, damaged_data, max_iters=6, validate=False, extra=extra)
    datasets = Config.fromfile(config).train_dataloader.dataset.datasets
    assert [d.pipeline[5].min_size for d in datasets] == [1e-5, 10000]
    with pytest.raises(RuntimeError, match='iteration 2: the training batch has no ground-truth relation left after '
                                           'the pipeline in its samples of source "synthetic".*Every relation is '
                                           'being filtered out of synthetic'):
        train(config)
    assert 'of source "real"' not in log_of(folder)
    assert [r['iter'] for r in trained(folder)] == [1]


@pytest.mark.slow
def test_unreadable_images_are_skipped_with_counted_warnings(tmp_path, damaged_data):
    folder = str(tmp_path)
    config = write_run_config(folder, damaged_data, max_iters=4, batch_size=4, on_unreadable='skip',
                              validate=False)
    batches = expected_batches(Config.fromfile(config), 4)
    # Two real images of later batches: one deleted, one overwritten with bytes that do not decode.
    missing, garbled = batches[1][0][1], batches[2][0][1]
    image_dir = osp.join(damaged_data['real'], 'VG_100K')
    os.remove(osp.join(image_dir, f'{missing}.jpg'))
    with open(osp.join(image_dir, f'{garbled}.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    train(config)

    log = log_of(folder)
    assert f'skipped unreadable image {image_dir}/{missing}.jpg (FileNotFoundError' in log
    assert f'skipped unreadable image {image_dir}/{garbled}.jpg (AssertionError' in log
    assert 'Unreadable images skipped so far in this process: 1' in log
    assert 'Unreadable images skipped so far in this process: 2' in log
    records = trained(folder)
    assert [r['iter'] for r in records] == [1, 2, 3, 4]
    for record, expected in zip(records, batches):
        # The replacement comes from the same source: the batch composition is unchanged.
        assert sorted(s for s, _ in record['samples']) == sorted(s for s, _ in expected)
        assert not {missing, garbled} & {img for _, img in record['samples']}


@pytest.mark.slow
def test_unreadable_image_stops_the_run_by_default(tmp_path, damaged_data):
    folder = str(tmp_path)
    config = write_run_config(folder, damaged_data, max_iters=4, validate=False)
    broken = expected_batches(Config.fromfile(config), 4)[2][0][1]
    path = osp.join(damaged_data['real'], 'VG_100K', f'{broken}.jpg')
    os.remove(path)
    with pytest.raises(UnreadableImageError, match=re.escape(f'cannot read image {path} (') + '.*on_unreadable="skip"'):
        train(config)
    assert [r['iter'] for r in trained(folder)] == [1, 2]  # mid-epoch: stopped at the third batch


def test_image_policy_arguments_are_checked():
    with pytest.raises(ValueError, match='on_unreadable must be one of'):
        SGGLoadImageFromFile(on_unreadable='ignore')
    with pytest.raises(ValueError, match='instead of ignore_empty'):
        SGGLoadImageFromFile(ignore_empty=True)
    loader = SGGLoadImageFromFile(on_unreadable='skip', max_skipped=1)
    assert loader(dict(img_path='/nonexistent/a.jpg')) is None
    with pytest.raises(UnreadableImageError, match='2 images could not be read .*max_skipped=1'):
        loader(dict(img_path='/nonexistent/b.jpg'))


@pytest.mark.slow
def test_nan_loss_skips_steps_then_stops(tmp_path, damaged_data):
    folder = str(tmp_path)
    extra = 'default_hooks.update(non_finite_guard=dict(max_consecutive_bad_steps=2))'
    config = write_run_config(folder, damaged_data, max_iters=6, validate=False,
                              probe=dict(nan_loss_at=[2, 4, 5]), extra=extra)
    with pytest.raises(RuntimeError, match='2 consecutive training steps had a non-finite loss'):
        train(config)
    log = log_of(folder)
    for iteration, in_a_row in ((2, 1), (4, 1), (5, 2)):
        assert f'iteration {iteration}: non-finite loss or gradient, weight update skipped ({in_a_row} in a row' in log
    assert 'iteration 3: non-finite' not in log
    assert [(r['iter'], r['loss'] == 'nan') for r in trained(folder)] == [
        (1, False), (2, True), (3, False), (4, True)]  # iteration 5 raised before the probe recorded it


@pytest.mark.slow
def test_a_nan_born_in_the_forward_leaves_no_trace_in_the_model(tmp_path, reliability_toy_data):
    """The toy recipe trains its BatchNorm: a NaN inside the forward of iteration 2 reaches the running
    statistics before any loss exists. The skipped step must put them back, so the final checkpoint holds only
    finite tensors and evaluates to finite scores."""
    folder = str(tmp_path)
    config = write_run_config(folder, reliability_toy_data, max_iters=4, interval=4,
                              probe=dict(nan_forward_at=[2]))
    train(config)
    assert 'iteration 2: non-finite loss or gradient, weight update skipped (1 in a row' in log_of(folder)
    assert 'iteration 3: non-finite' not in log_of(folder)
    state = load_complete(osp.join(folder, 'work', 'iter_4.pth'))['state_dict']
    running = [key for key in state if key.endswith('running_var')]
    assert running, 'the toy recipe has trainable BatchNorm'
    assert [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()] \
        == []
    scores = [r['score'] for r in read_records(osp.join(folder, 'records')) if r['event'] == 'val']
    assert len(scores) == 1 and np.isfinite(scores[0])
    checkpoint = osp.join(folder, 'work', 'iter_4.pth')
    load_tool('tools/test.py').main([config, checkpoint, '--work-dir', osp.join(folder, 'test')])
    tested = [r['metrics'] for r in read_records(osp.join(folder, 'records')) if r['event'] == 'test']
    assert len(tested) == 1 and np.isfinite(tested[0]['probe/score'])


def _build_with(config, key, value):
    """Load ``config`` with ``key=value`` and build the part of the run that ``key`` configures."""
    init_default_scope('mmdet')
    cfg = load_run_config(config, cfg_options={key: value})
    if key.startswith('model.'):
        return MODELS.build(cfg.model)
    if key.startswith('default_hooks.'):
        return HOOKS.build(cfg.default_hooks[key.split('.')[1]])
    if '.batch_sampler.' in key:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        sampler = type('Sampler', (), dict(dataset=dataset, seed=0))()
        return DATA_SAMPLERS.build(cfg.train_dataloader.batch_sampler,
                                   default_args=dict(sampler=sampler, batch_size=2))
    return DATASETS.build(cfg.train_dataloader.dataset)


# Classes that forward unknown keyword arguments to their mmdet/mmengine base: Python's error names the base.
@pytest.mark.parametrize('key, value, component', [
    ('model.bbox_head.criterion.no_objcet_weight', 0.1, 'SpeaQRelationCriterion'),
    ('model.bbox_head.num_predicate', 6, 'SpeaQRelationHead'),
    ('model.decoder.num_layer', 2, 'SpeaQIterativeRelationDecoder'),
    ('model.train_cfg.assigner.one_to_mnay', 'dynamic', 'SpeaQTripletMatcher'),
    ('train_dataloader.batch_sampler.source_ratoi', [0.5, 0.5], 'SGGRatioBatchSampler'),
    ('default_hooks.non_finite_guard.max_consecutive_bad_step', 3, 'SpeaQNonFiniteGuardHook'),
    ('model.num_entity_querys', 8, 'SpeaQDetector'),
    ('train_dataloader.dataset.datasets.0.filter_empty_rel', False, 'VGH5Dataset'),
])
def test_config_typo_in_a_speaq_key_names_the_key_and_the_class(tmp_path, key, value, component, reliability_toy_data):
    config = write_run_config(str(tmp_path), reliability_toy_data, validate=False)
    with pytest.raises(TypeError) as info:
        _build_with(config, key, value)
    assert f"unexpected keyword argument '{key.split('.')[-1]}'" in str(info.value)
    assert component in str(info.value)


def test_config_typo_in_a_speaq_type_is_named(tmp_path, reliability_toy_data):
    config = write_run_config(str(tmp_path), reliability_toy_data, validate=False)
    with pytest.raises(KeyError, match='SpeaQDetecter is not in the mmdet::model registry'):
        _build_with(config, 'model.type', 'SpeaQDetecter')


@pytest.mark.slow
def test_checkpoint_with_other_query_counts_lists_the_mismatched_keys(tmp_path, reliability_toy_data):
    test_main = load_tool('tools/test.py').main

    folder = str(tmp_path)
    config = write_run_config(folder, reliability_toy_data, validate=False)
    other = load_run_config(config, cfg_options={'model.num_entity_queries': 8, 'model.num_relation_queries': 16})
    init_default_scope('mmdet')
    checkpoint = osp.join(folder, 'other_queries.pth')
    torch.save(dict(state_dict=MODELS.build(other.model).state_dict(), meta=dict()), checkpoint)
    pattern = ('(?s)' + re.escape(f'checkpoint {checkpoint} does not fit the model: 3 tensor') + '.*'
               r'subject_query_embedding.weight: \(8, 128\) vs \(16, 128\).*'
               r'object_query_embedding.weight: \(8, 128\) vs \(16, 128\).*'
               r'relation_query_embedding.weight: \(16, 128\) vs \(32, 128\).*'
               'num_entity_queries = 8 in the checkpoint, 16 in the config, '
               'num_relation_queries = 16 in the checkpoint, 32 in the config')
    with pytest.raises(CheckpointMismatchError, match=pattern):
        test_main([config, checkpoint, '--work-dir', osp.join(folder, 'test')])


def test_cfg_option_typo_of_a_top_level_key_is_refused(tmp_path, reliability_toy_data):
    """``--cfg-options train_dataloadr.batch_size=2`` would otherwise add a key nothing reads."""
    config = write_run_config(str(tmp_path), reliability_toy_data, validate=False)
    with pytest.raises(KeyError, match='train_dataloadr.*did you mean "train_dataloader"'):
        load_run_config(config, cfg_options={'train_dataloadr.batch_size': 2})
