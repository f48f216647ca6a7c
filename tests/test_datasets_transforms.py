"""Relation-aware transforms, packing, full pipelines from the configs, and datasets inside ConcatDataset."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import DATASETS, TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.dataset import ConcatDataset, pseudo_collate
from mmengine.registry import init_default_scope

from speaq_mm.datasets import STATISTICS_KEYS
from speaq_mm.datasets.transforms import (
    SGGFilterDuplicateRelations,
    SGGFilterEmptyInstances,
    SGGLoadAnnotations,
    SGGPackInputs,
    SGGSwapPredicatesOnFlip,
)
from tests.datasets_fixtures import REPO_ROOT, make_images, write_hand_dataset
from tests.sampler_fixtures import TOY_SIZES

init_default_scope('mmdet')


def scene(boxes, relations, size=(100, 100)):
    """Pipeline results for a record whose box k has label k (so boxes can be recognised after transforms)."""
    return dict(
        img=np.zeros(size + (3, ), np.uint8), img_shape=size, ori_shape=size, img_path='scene.jpg', img_id=1,
        source='synthetic', sample_weight=0.5,
        instances=[dict(bbox=list(map(float, b)), bbox_label=k, ignore_flag=0)
                   for k, b in enumerate(boxes)], relations=np.array(relations, np.int64).reshape(-1, 3))


def triplets_by_label(packed):
    """(subject label, object label, predicate) of the packed relations."""
    sample = packed['data_samples']
    labels = sample.gt_instances.labels.tolist()
    return [(labels[s], labels[o], p) for (s, o), p in zip(sample.gt_relations.pairs.tolist(),
                                                          sample.gt_relations.labels.tolist())]


def test_load_and_pack():
    results = SGGLoadAnnotations()(scene([(0, 0, 10, 10), (20, 20, 40, 50)], [(1, 0, 2), (0, 1, 0)]))
    assert results['gt_instances_ids'].tolist() == [0, 1] and results['gt_relations'].dtype == np.int64
    assert isinstance(results['gt_bboxes'], HorizontalBoxes)
    packed = SGGPackInputs()(results)
    sample = packed['data_samples']
    assert sample.gt_instances.bboxes.tensor.tolist() == [[0, 0, 10, 10], [20, 20, 40, 50]]
    assert sample.gt_relations.pairs.dtype == torch.int64 and sample.gt_relations.labels.dtype == torch.int64
    assert sample.gt_relations.pairs.tolist() == [[1, 0], [0, 1]
                                                  ] and sample.gt_relations.labels.tolist() == [2, 0]
    meta = sample.metainfo
    assert (meta['source'], meta['sample_weight'], meta['flip'], meta['flip_direction']) == ('synthetic', 0.5,
                                                                                           False, None)
    assert meta['img_id'] == 1 and meta['img_path'] == 'scene.jpg'


def test_load_rejects_bad_relations():
    with pytest.raises(ValueError,
                       match=r'scene.jpg: relation \[0, 2, 1\] refers to an instance outside 0..1'):
        SGGLoadAnnotations()(scene([(0, 0, 10, 10), (20, 20, 40, 50)], [(0, 2, 1)]))
    with pytest.raises(ValueError, match='must have shape'):
        results = scene([(0, 0, 10, 10)], [])
        results['relations'] = np.zeros((2, 2), np.int64)
        SGGLoadAnnotations()(results)


def test_no_boxes_no_relations():
    packed = SGGPackInputs()(SGGLoadAnnotations()(scene([], [])))
    assert packed['data_samples'].gt_relations.pairs.shape == (0, 2)
    assert len(packed['data_samples'].gt_instances) == 0


def test_random_crop_remaps_relations():
    # Boxes across a 200 x 100 image; a 100 x 100 crop keeps some of them, depending on the offset.
    boxes = [(0, 10, 30, 40), (40, 10, 70, 40), (90, 50, 120, 80), (150, 10, 190, 40), (170, 60, 200, 90)]
    relations = [(0, 1, 0), (1, 2, 1), (2, 3, 2), (3, 4, 0), (4, 0, 1), (1, 0, 2), (2, 2, 1)]
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(100, 100), allow_negative_crop=True))
    outcomes = set()
    for seed in range(30):
        np.random.seed(seed)
        results = crop(SGGLoadAnnotations()(scene(boxes, relations, size=(100, 200))))
        offset = -results['homography_matrix'][0, 2]
        survivors = {k for k, b in enumerate(boxes) if b[0] < offset + 100 and b[2] > offset}
        packed = SGGPackInputs()(SGGFilterEmptyInstances()(results))
        assert sorted(packed['data_samples'].gt_instances.labels.tolist()) == sorted(survivors)
        expected = [r for r in relations if r[0] in survivors and r[1] in survivors]
        assert triplets_by_label(packed) == expected
        outcomes.add(frozenset(survivors))
    assert len(outcomes) >= 3  # the seeds exercise several different crops


def test_filter_empty_instances_drops_their_relations():
    results = SGGLoadAnnotations()(scene([(0, 0, 10, 10), (5, 5, 5, 30),
                                          (20, 20, 40, 20.000001), (1, 1, 3, 3)], [(0, 1, 0), (1, 3, 1),
                                                                                   (3, 0, 2), (2, 3, 1),
                                                                                   (0, 3, 0)]))
    results = SGGFilterEmptyInstances(min_size=1e-5)(results)
    assert results['gt_instances_ids'].tolist() == [0, 3] and results['gt_bboxes_labels'].tolist() == [0, 3]
    assert triplets_by_label(SGGPackInputs()(results)) == [(3, 0, 2), (0, 3, 0)]
    assert 'min_size=1e-05' in repr(SGGFilterEmptyInstances())


def test_ignored_instances_leave_the_relations():
    results = SGGLoadAnnotations()(scene([(0, 0, 10, 10), (20, 20, 40, 50), (50, 50, 60, 60)],
                                         [(0, 1, 0), (2, 0, 1), (1, 2, 2)]))
    results['gt_ignore_flags'] = np.array([False, True, False])
    packed = SGGPackInputs()(results)
    assert triplets_by_label(packed) == [(2, 0, 1)]
    assert packed['data_samples'].gt_relations.pairs.tolist() == [[1, 0]]


def test_pack_refuses_out_of_step_instance_ids():
    results = SGGLoadAnnotations()(scene([(0, 0, 10, 10), (20, 20, 40, 50)], [(0, 1, 0)]))
    results['gt_bboxes'] = results['gt_bboxes'][np.array([True, False])]
    with pytest.raises(RuntimeError, match='1 boxes but 2 gt_instances_ids'):
        SGGPackInputs()(results)


def test_filter_duplicate_relations():
    relations = np.array([(0, 1, 0), (2, 0, 1), (0, 1, 2), (0, 1, 3), (2, 0, 1), (1, 2, 4)], np.int64)
    chosen = {0: [], 1: []}
    transform = SGGFilterDuplicateRelations()
    for seed in range(300):
        np.random.seed(seed)
        kept = transform(dict(gt_relations=relations.copy()))['gt_relations']
        # One relation per pair, pairs in order of first occurrence.
        assert kept[:, :2].tolist() == [[0, 1], [2, 0], [1, 2]]
        assert kept[1, 2] == 1 and kept[2, 2] == 4
        chosen[0].append(int(kept[0, 2]))
    counts = np.bincount(chosen[0], minlength=4)
    assert counts[1] == 0 and (counts[[0, 2, 3]] > 60).all()  # uniform over the pair's three predicates
    np.random.seed(5)
    first = transform(dict(gt_relations=relations.copy()))['gt_relations']
    np.random.seed(5)
    assert np.array_equal(first, transform(dict(gt_relations=relations.copy()))['gt_relations'])
    single = dict(gt_relations=relations[:1].copy())
    assert transform(single)['gt_relations'].tolist() == [[0, 1, 0]]


def test_swap_predicates_on_flip():
    names = ('above', 'below', 'left of', 'near', 'on', 'right of')
    swap = SGGSwapPredicatesOnFlip(names, horizontal=[('left of', 'right of')], vertical=[('above', 'below')])
    relations = np.array([(0, 1, 0), (0, 1, 1), (0, 1, 2), (0, 1, 3), (0, 1, 4), (0, 1, 5)])
    expected = {None: [0, 1, 2, 3, 4, 5], 'horizontal': [0, 1, 5, 3, 4, 2], 'vertical': [1, 0, 2, 3, 4, 5],
                'diagonal': [1, 0, 5, 3, 4, 2]}
    for direction, predicates in expected.items():
        results = swap(
            dict(flip=direction is not None, flip_direction=direction, gt_relations=relations.copy()))
        assert results['gt_relations'][:, 2].tolist() == predicates
    with pytest.raises(ValueError, match=r"\['behind'\] are not in predicates"):
        SGGSwapPredicatesOnFlip(names, horizontal=[('left of', 'behind')])


def test_horizontal_flip_keeps_geometry_consistent():
    names = ('above', 'below', 'left of', 'near', 'on', 'right of')
    pipeline = [SGGLoadAnnotations(), TRANSFORMS.build(dict(type='RandomFlip', prob=1.0)),
                SGGSwapPredicatesOnFlip(names, horizontal=[('left of', 'right of')]), SGGPackInputs()]
    results = scene([(0, 0, 20, 20), (60, 0, 80, 20)], [(0, 1, 2), (1, 0, 5)])
    for step in pipeline:
        results = step(results)
    boxes = results['data_samples'].gt_instances.bboxes.tensor
    assert boxes[0, 0] > boxes[1, 0]  # box 0 is now on the right
    assert triplets_by_label(results) == [(0, 1, 5), (1, 0, 2)]  # ... so it is "right of" box 1


# ----------------------------------------------------------------------------------------------------
# Datasets with the config pipelines
# ----------------------------------------------------------------------------------------------------
from speaq_mm.datasets import toy_scenes as toy  # noqa: E402

# The toy_roots fixture (tests/conftest.py) holds TOY_SIZES train-split images per source; 2 go to val here.
TRAIN_IMAGES = {source: count - 2 for source, count in TOY_SIZES.items()}


def dataset_from_config(name, split, data_root, **overrides):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.update(data_root=data_root, **overrides)
    return DATASETS.build(dataset_cfg)


def test_toy_train_pipeline(toy_roots):
    dataset = dataset_from_config('toy_real', 'train', toy_roots['real'], num_val_images=2)
    assert len(dataset) == TRAIN_IMAGES['real']
    np.random.seed(0)
    for i in range(len(dataset)):
        packed = dataset[i]
        sample = packed['data_samples']
        assert packed['inputs'].shape == (3, 128, 128) and packed['inputs'].dtype == torch.uint8
        assert set(sample.metainfo) >= {
            'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
            'source', 'sample_weight'
        }
        assert sample.metainfo['source'] == 'real' and sample.metainfo['sample_weight'] == 1.0
        pairs = sample.gt_relations.pairs
        assert len(pairs) == len({tuple(p) for p in pairs.tolist()})  # duplicates resampled away
        assert len(pairs) > 0 and pairs.max() < len(sample.gt_instances)


def test_toy_test_pipeline_keeps_original_boxes(toy_roots):
    dataset = dataset_from_config('toy_synthetic', 'test', toy_roots['synthetic'], num_val_images=2)
    record = dataset.get_data_info(0)
    sample = dataset[0]['data_samples']
    assert sample.gt_instances.bboxes.tensor.tolist() == [inst['bbox'] for inst in record['instances']]
    assert sample.gt_relations.pairs.tolist() == record['relations'][:, :2].tolist()
    # A single-source config trains at weight 1.0; only a mix weighs its sources (SGGConcatDataset).
    assert sample.metainfo['source'] == 'synthetic' and sample.metainfo['sample_weight'] == 1.0


def test_vg150_pipeline_on_hand_files(tmp_path):
    paths = write_hand_dataset(str(tmp_path))
    make_images(paths)
    train = dataset_from_config('vg150', 'train', str(tmp_path), num_val_images=1)
    np.random.seed(1)
    for _ in range(5):
        for i in range(len(train)):
            sample = train[i]['data_samples']
            assert min(sample.metainfo['img_shape']) >= 384 and max(sample.metainfo['img_shape']) <= 1333
            assert sample.gt_relations.pairs.numpy().max(initial=-1) < len(sample.gt_instances)
    test = dataset_from_config('vg150', 'test', str(tmp_path), num_val_images=1)
    sample = test[0]['data_samples']
    assert sample.metainfo['img_shape'] == (800, 1600) or sample.metainfo['img_shape'] == (667, 1333)
    assert sample.gt_instances.bboxes.tensor.tolist() == [[45, 45, 55, 55], [65, 45, 75, 55]]
    # Test GT keeps duplicate relations.
    assert sample.gt_relations.pairs.tolist() == [[0, 1], [0, 1]]


def test_preprocessor_keeps_relations(toy_roots):
    dataset = dataset_from_config('toy_real', 'train', toy_roots['real'], num_val_images=2)
    batch = pseudo_collate([dataset[0], dataset[1]])
    processed = DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=True)(batch, training=True)
    for sample in processed['data_samples']:
        assert isinstance(sample.gt_instances.bboxes, torch.Tensor)
        assert sample.gt_relations.pairs.dtype == torch.int64
        assert {'batch_input_shape', 'pad_shape', 'source', 'sample_weight'} <= set(sample.metainfo)


def test_unreadable_and_missing_images(tmp_path):
    paths = write_hand_dataset(str(tmp_path))
    dataset = dataset_from_config('vg150', 'val', str(tmp_path), num_val_images=1)
    image = osp.join(paths['img_dir'], '10.jpg')
    with pytest.raises(FileNotFoundError, match='10.jpg'):
        dataset[0]
    with open(image, 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(Exception, match=f'failed to load image: {image}'):
        dataset[0]


def test_concat_real_and_synthetic(toy_roots, tmp_path):
    parts = [dataset_from_config(f'toy_{style}', 'train', toy_roots[style], num_val_images=2)
             for style in ('real', 'synthetic')]
    with pytest.raises(ValueError, match='does not match meta information'):
        ConcatDataset(parts)  # the train statistics differ ...
    mixed = ConcatDataset(parts, ignore_keys=list(STATISTICS_KEYS))  # ... the vocabulary does not
    assert len(mixed) == sum(TRAIN_IMAGES.values()) and mixed.metainfo['predicates'] == toy.TOY_PREDICATES
    last = len(mixed) - 1
    assert [mixed[i]['data_samples'].metainfo['source'] for i in (0, last)] == ['real', 'synthetic']
    assert [mixed[i]['data_samples'].metainfo['sample_weight'] for i in (0, last)] == [1.0, 1.0]
    write_hand_dataset(str(tmp_path))
    other = dataset_from_config('toy_real', 'train', str(tmp_path), num_val_images=1)
    with pytest.raises(ValueError, match='does not match meta information'):
        ConcatDataset([parts[0], other], ignore_keys=list(STATISTICS_KEYS))


def test_dataset_configs():
    # Single-source configs set no sample weight: their samples train at VGH5Dataset's default 1.0.
    expected = {'vg150': ('data/vg/', 'real', 5000, 'val'),
                'synthetic_genome': ('data/synthetic_genome/', 'synthetic', 0, 'test'),
                'toy_real': ('data/toy_real/', 'real', 100, 'val'),
                'toy_synthetic': ('data/toy_synthetic/', 'synthetic', 100, 'val')}
    for name, (root, source, num_val, val_split) in expected.items():
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
        datasets = [cfg[f'{split}_dataloader'].dataset for split in ('train', 'val', 'test')]
        assert [d.split for d in datasets] == ['train', val_split, 'test']
        for dataset in datasets:
            assert (dataset.type, dataset.data_root, dataset.source, dataset.get('sample_weight', 1.0),
                    dataset.num_val_images) == ('VGH5Dataset', root, source, 1.0, num_val)
        assert [step['type'] for step in datasets[0].pipeline][-3:] == ['SGGFilterEmptyInstances',
                                                                       'SGGFilterDuplicateRelations', 'SGGPackInputs']
        types = [step['type'] for step in datasets[2].pipeline]
        assert types.index('SGGLoadAnnotations') > types.index('Resize') and 'SGGFilterDuplicateRelations' not in types
        assert cfg.val_evaluator == dict(type='SGGMetric') and cfg.test_evaluator == cfg.val_evaluator
    synthetic = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'synthetic_genome.py'))
    assert synthetic.train_dataloader.dataset.ann_file == 'augmented_from_refined.h5'
    assert synthetic.train_dataloader.dataset.image_data_file == 'image_data_new.json'
