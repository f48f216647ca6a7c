"""Relation scores of pseudo-labelled data: the optional ``relationship_scores`` h5 dataset, json_to_vg with
scores, --exclude and --alias-map, VGH5Dataset records, the score-to-weight map, and every relation-touching
transform keeping the weights with their relations."""
import json
import os.path as osp

import h5py
import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmengine.registry import init_default_scope
from PIL import Image

from speaq_mm.datasets import SGGConcatDataset, VGFormatError, VGH5Dataset
from speaq_mm.datasets.relation_weights import check_relation_weight, relation_weights_from_scores
from speaq_mm.datasets.scene_graph_json import json_to_vg, vg_to_json
from speaq_mm.datasets.transforms import SGGFilterDuplicateRelations, SGGLoadAnnotations, SGGPackInputs
from speaq_mm.datasets.vg_format import load_vg_graphs, write_vg_h5
from tests.datasets_fixtures import RELATIONS, write_hand_dataset

init_default_scope('mmdet')
VG150_KEYS = {'split', 'img_to_first_box', 'img_to_last_box', 'img_to_first_rel', 'img_to_last_rel', 'labels',
              'boxes_1024', 'boxes_512', 'relationships', 'predicates', 'attributes', 'active_object_mask'}
# One score per relation row of tests/datasets_fixtures.py, in file order: 0.1, 0.2, ... 0.7.
SCORES = np.arange(1, 8, dtype=np.float32) / 10


def add_scores(paths, scores=SCORES):
    with h5py.File(paths['ann_file'], 'a') as h5:
        h5['relationship_scores'] = np.asarray(scores, np.float32)


def dataset(paths, split='train', **kwargs):
    kwargs.setdefault('num_val_images', 1)
    return VGH5Dataset(data_root=osp.dirname(paths['ann_file']), split=split, **kwargs)


def test_a_file_without_scores_reads_as_today(tmp_path):
    paths = write_hand_dataset(str(tmp_path))
    with h5py.File(paths['ann_file'], 'r') as h5:
        assert set(h5) == VG150_KEYS
    record = dataset(paths, split='val').get_data_info(0)
    assert set(record) == {'img_path', 'img_id', 'height', 'width', 'instances', 'relations', 'source',
                           'sample_weight', 'sample_idx'}
    with pytest.raises(ValueError, match='has no "relationship_scores"'):
        dataset(paths, relation_weight=dict())


def test_records_carry_the_scores_of_their_relations(tmp_path):
    paths = write_hand_dataset(str(tmp_path))
    add_scores(paths)
    # Rows with relations: 0 (3: scores 0.1-0.3), 3 (0.4), 4 (test: 0.5, 0.6), 6 (0.7).
    val = dataset(paths, split='val').get_data_info(0)
    assert val['relations'].tolist() == [list(r) for r in RELATIONS[0]]
    assert val['relation_scores'].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert 'relation_weights' not in val  # no map: every relation weighs 1
    train = dataset(paths, relation_weight=dict(power=2.0))
    assert [train.get_data_info(i)['relation_scores'].tolist() for i in range(2)] == [[pytest.approx(0.4)],
                                                                                     [pytest.approx(0.7)]]
    assert train.get_data_info(1)['relation_weights'].tolist() == [pytest.approx(0.49)]
    assert dataset(paths, split='test').get_data_info(0)['relation_scores'].tolist() == pytest.approx([0.5, 0.6])
    # Dataset-level relation filters keep the scores aligned: non-overlap drops row 6 (its boxes are apart).
    overlap = dataset(paths, filter_non_overlap=True)
    assert len(overlap) == 1 and overlap.get_data_info(0)['relation_scores'].tolist() == [pytest.approx(0.4)]
    # Subsets and reordering keep them too.
    assert train.get_subset([1, 0]).get_data_info(0)['relation_scores'].tolist() == [pytest.approx(0.7)]


def test_degenerate_boxes_take_their_relations_scores_along(tmp_path):
    path = str(tmp_path / 'g.h5')
    boxes = np.array([[10, 10, 8, 8], [30, 30, 0, 8], [60, 60, 8, 8]], np.int32)  # box 1 has no width
    relations = np.array([[0, 2, 0], [1, 2, 1], [2, 0, 2], [2, 1, 0]])
    write_vg_h5(path, np.array([0]), [3], {1024: boxes}, np.array([0, 1, 2]), [4], relations,
                relation_scores=np.array([0.1, 0.2, 0.3, 0.4]))
    (tmp_path / 'i.json').write_text(json.dumps([dict(width=100, height=100, image_id=1)]))
    with pytest.warns(UserWarning, match='dropped 1 boxes'):
        graphs = load_vg_graphs(path, str(tmp_path / 'i.json'), 3, 3)
    assert graphs.relations.tolist() == [[0, 1, 0], [1, 0, 2]]
    assert graphs.relation_scores.tolist() == pytest.approx([0.1, 0.3])


@pytest.mark.parametrize('scores, message', [
    (SCORES[:6], 'has 6 rows, "relationships" has 7'),
    (np.append(SCORES[:6], 1.5), r'row 6 = 1.5 is not a score in \[0, 1\]'),
    (np.append(SCORES[:6], np.nan), 'row 6 = nan'),
    (np.zeros((7, 2), np.float32), 'shape'),
])
def test_bad_scores_name_the_key_and_row(tmp_path, scores, message):
    paths = write_hand_dataset(str(tmp_path))
    add_scores(paths, scores)
    with pytest.raises(VGFormatError, match=f'relationship_scores.*{message}|{message}'):
        dataset(paths)


def test_score_to_weight_map():
    scores = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
    assert relation_weights_from_scores(scores, check_relation_weight(dict(), 'w')).tolist() == scores.tolist()
    assert relation_weights_from_scores(scores, check_relation_weight(dict(power=2), 'w')).tolist() == [
        0.0, 0.0625, 0.25, 1.0]
    assert relation_weights_from_scores(scores, check_relation_weight(dict(floor=0.3), 'w')).tolist() == pytest.approx(
        [0.3, 0.3, 0.5, 1.0])
    assert relation_weights_from_scores(scores, check_relation_weight(dict(power=0.5, floor=0.6), 'w')).tolist() == \
        pytest.approx([0.6, 0.6, 0.5 ** 0.5, 1.0])
    assert check_relation_weight(None, 'w') is None
    for bad, message in ((dict(gamma=1), 'unknown keys'), (dict(power=0), 'power'), (dict(floor=1.5), 'floor'),
                         ('identity', 'must be a dict')):
        with pytest.raises(ValueError, match=message):
            check_relation_weight(bad, 'relation_weights.synthetic')


def test_concat_dataset_keys_the_map_by_source(tmp_path):
    real = write_hand_dataset(str(tmp_path / 'real'))
    synthetic = write_hand_dataset(str(tmp_path / 'synthetic'))
    add_scores(synthetic)
    parts = [dict(type='VGH5Dataset', data_root=osp.dirname(p['ann_file']), num_val_images=1, source=s, pipeline=[])
             for p, s in ((real, 'real'), (synthetic, 'synthetic'))]
    mix = SGGConcatDataset(parts, relation_weights=dict(synthetic=dict(floor=0.5)))
    assert 'relation_weights' not in mix.get_data_info(0)
    assert mix.get_data_info(3)['relation_weights'].tolist() == [pytest.approx(0.7)]
    assert mix.get_data_info(2)['relation_weights'].tolist() == [0.5]  # score 0.4 below the floor
    with pytest.raises(ValueError, match=r"relation_weights \['synth'\] match no dataset"):
        SGGConcatDataset(parts, relation_weights=dict(synth=dict()))
    with pytest.raises(ValueError, match='has no "relationship_scores"'):
        SGGConcatDataset(parts, relation_weights=dict(real=dict()))


def test_every_relation_touching_transform_keeps_the_weights_aligned():
    """Shuffled relations, duplicate pairs, a dropped box, a flip that swaps predicates: every packed relation
    must still carry the score given to that very relation."""
    boxes = [(0, 0, 10, 10), (20, 0, 30, 10), (40, 0, 40, 10), (60, 0, 70, 10), (0, 40, 10, 50)]  # box 2: no width
    predicates = ('left of', 'near', 'right of')
    # Every ordered pair, every predicate: a unique score per (subject, object, predicate).
    relations = [(s, o, p) for s in range(5) for o in range(5) if s != o for p in range(3)]
    score = {r: (i + 1) / 100 for i, r in enumerate(relations)}
    pipeline = [TRANSFORMS.build(t) for t in (
        dict(type='SGGLoadAnnotations'), dict(type='RandomFlip', prob=0.5),
        dict(type='SGGSwapPredicatesOnFlip', predicates=predicates, horizontal=[('left of', 'right of')]),
        dict(type='SGGFilterEmptyInstances'), dict(type='SGGFilterDuplicateRelations'), dict(type='SGGPackInputs'))]
    swap = {0: 2, 1: 1, 2: 0}
    flips = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(relations))
        shuffled = [relations[i] for i in order]
        results = dict(img=np.zeros((100, 100, 3), np.uint8), img_shape=(100, 100), ori_shape=(100, 100),
                       img_path='x.png', img_id=1, instances=[dict(bbox=list(map(float, b)), bbox_label=k,
                                                                   ignore_flag=0) for k, b in enumerate(boxes)],
                       relations=np.array(shuffled, np.int64),
                       relation_weights=np.array([score[r] for r in shuffled], np.float32))
        np.random.seed(seed)
        for transform in pipeline:
            results = transform(results)
        sample = results['data_samples']
        flipped = sample.metainfo['flip']
        flips.add(flipped)
        labels = sample.gt_instances.labels.tolist()  # box k has label k: the original index
        pairs = sample.gt_relations.pairs.tolist()
        assert len(pairs) == 4 * 3  # one relation per ordered pair of the 4 boxes left
        for (s, o), p, w in zip(pairs, sample.gt_relations.labels.tolist(), sample.gt_relations.weights.tolist()):
            original = (labels[s], labels[o], swap[p] if flipped else p)
            assert w == pytest.approx(score[original]), (seed, original)
    assert flips == {True, False}


def test_weights_are_checked_when_loaded():
    def results(**weights):
        return dict(img=np.zeros((10, 10, 3), np.uint8), img_shape=(10, 10), ori_shape=(10, 10), img_path='x.png',
                    instances=[dict(bbox=[0, 0, 5, 5], bbox_label=0, ignore_flag=0),
                               dict(bbox=[5, 5, 9, 9], bbox_label=1, ignore_flag=0)],
                    relations=np.array([[0, 1, 0]]), **weights)

    for bad in ([0.5, 0.5], [-0.5], [np.inf]):
        with pytest.raises(ValueError, match='one finite weight >= 0 per relation'):
            SGGLoadAnnotations()(results(relation_weights=np.array(bad)))
    packed = SGGPackInputs()(SGGFilterDuplicateRelations()(SGGLoadAnnotations()(results(
        relation_weights=np.array([0.5])))))
    assert packed['data_samples'].gt_relations.weights.tolist() == [0.5]
    assert 'weights' not in SGGPackInputs()(SGGLoadAnnotations()(results()))['data_samples'].gt_relations


# ----------------------------------------------------------------------------------------------------------
# json_to_vg: scores, --exclude, --alias-map
# ----------------------------------------------------------------------------------------------------------
def labels_file(tmp_path, images):
    folder = tmp_path / 'img'
    folder.mkdir(exist_ok=True)
    for image in images:
        Image.new('RGB', (64, 48)).save(folder / image['file_name'])
    path = tmp_path / 'labels.json'
    path.write_text(json.dumps(dict(classes=['cat', 'dog', 'mat'], predicates=['near', 'on', 'sitting on'],
                                    images=images)))
    return str(path), str(folder)


def graph(name, relations, objects=('cat', 'mat', 'dog')):
    return dict(file_name=name, width=64, height=48,
                objects=[dict(id=i, name=n, bbox=[i * 10, 0, i * 10 + 8, 8], score=0.9) for i, n in enumerate(objects)],
                relations=[dict(subject=s, object=o, predicate=p, **({} if sc is None else dict(score=sc)))
                           for s, o, p, sc in relations])


def test_json_to_vg_stores_scores_and_the_dataset_reads_them(tmp_path):
    path, folder = labels_file(tmp_path, [graph('a.png', [(0, 1, 'on', 0.8), (2, 0, 'near', 0.3)]),
                                          graph('b.png', [(0, 1, 'sitting on', None), (1, 2, 'on', 2.0)])])
    report = json_to_vg(path, str(tmp_path / 'vg'), folder)
    assert report['relation_scores'] and report['dropped']['relation: bad score']['count'] == 1
    with h5py.File(tmp_path / 'vg' / 'VG-SGG-with-attri.h5', 'r') as h5:
        assert h5['relationship_scores'].dtype == np.float32
        assert h5['relationship_scores'][()].tolist() == pytest.approx([0.8, 0.3, 1.0])  # no score: 1.0
    records = [r for r in dataset(dict(ann_file=str(tmp_path / 'vg' / 'VG-SGG-with-attri.h5')), num_val_images=0,
                                  img_suffix='.png').load_data_list()]
    assert [r['relation_scores'].tolist() for r in records] == [[pytest.approx(0.8), pytest.approx(0.3)], [1.0]]
    # ... and vg_to_json gives them back.
    vg_to_json(str(tmp_path / 'vg'), str(tmp_path / 'back.json'), img_suffix='.png')
    back = json.loads((tmp_path / 'back.json').read_text())
    assert [[r['score'] for r in image['relations']] for image in back['images']] == [
        [pytest.approx(0.8), pytest.approx(0.3)], [1.0]]
    # Without any score the h5 has exactly the VG150 keys.
    path, folder = labels_file(tmp_path, [graph('a.png', [(0, 1, 'on', None)])])
    assert not json_to_vg(path, str(tmp_path / 'plain'), folder)['relation_scores']
    with h5py.File(tmp_path / 'plain' / 'VG-SGG-with-attri.h5', 'r') as h5:
        assert set(h5) == VG150_KEYS


def test_exclude_list_and_alias_map(tmp_path):
    path, folder = labels_file(tmp_path, [
        graph('a.png', [(0, 1, 'sitting on top of', 0.9), (2, 0, 'close to', 0.5), (2, 1, 'beside', 0.4)],
              objects=('kitty', 'mat', 'dog')),
        graph('b.png', [(0, 1, 'on', 0.8)]), graph('c.png', [(0, 1, 'beside', 0.7)])])
    (tmp_path / 'exclude.txt').write_text('# hand-checked: wrong layout\nb.png\nnot_there.png\n')
    (tmp_path / 'aliases.json').write_text(json.dumps(dict(classes={'kitty': 'cat'}, predicates={
        'sitting on top of': 'sitting on', 'close to': 'near'})))
    report = json_to_vg(path, str(tmp_path / 'vg'), folder, exclude_file=str(tmp_path / 'exclude.txt'),
                        alias_file=str(tmp_path / 'aliases.json'))
    assert report['dropped']['image: excluded']['count'] == 1
    assert report['aliased'] == dict(classes={'kitty': 1}, predicates={'sitting on top of': 1, 'close to': 1})
    assert report['unmapped'] == dict(classes={}, predicates={'beside': 2})  # reported with its count
    assert any("'beside' x2" in note for note in report['notes'])
    assert any('not_there.png' in note for note in report['notes'])
    records = dataset(dict(ann_file=str(tmp_path / 'vg' / 'VG-SGG-with-attri.h5')), num_val_images=0,
                      img_suffix='.png').load_data_list()
    assert [r['img_id'] for r in records] == ['a']  # b excluded, c lost its only relation ("beside")
    assert records[0]['relations'].tolist() == [[0, 1, 2], [2, 0, 0]]  # sitting on, near
    assert [i['bbox_label'] for i in records[0]['instances']] == [0, 2, 1]  # kitty -> cat
    (tmp_path / 'bad.json').write_text(json.dumps(dict(predicates={'x': 'flying'})))
    with pytest.raises(ValueError, match=r"maps to \['flying'\], which are not in the vocabulary"):
        json_to_vg(path, str(tmp_path / 'vg2'), folder, alias_file=str(tmp_path / 'bad.json'))
