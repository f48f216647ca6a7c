"""The toy scene generator (speaq_mm.datasets.toy_scenes): VG layout, geometry of the labels, determinism."""
import json
import os
import os.path as osp

import h5py
import numpy as np
import pytest
from PIL import Image

from speaq_mm.datasets import toy_scenes as toy  # noqa: E402
from speaq_mm.datasets.vg_format import VG_CORRUPTED_IMAGE_IDS
from speaq_mm.datasets.vg_h5 import VGH5Dataset
from tests.datasets_fixtures import load_tool

toy_cli = load_tool('tools/misc/make_toy_scenes.py')
SIZE = 128


@pytest.fixture(scope='module')
def toy_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    toy_cli.main([root, '--num-train', '12', '--num-test', '4', '--duplicate-rate', '1.0', '--seed', '3'])
    return root


def records(root, split, **kwargs):
    dataset = VGH5Dataset(data_root=root, split=split, num_val_images=kwargs.pop('num_val_images', 0),
                          **kwargs)
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_vg_layout(toy_set):
    with h5py.File(osp.join(toy_set, 'VG-SGG-with-attri.h5'), 'r') as h5:
        layout = {key: (h5[key].shape[1:], h5[key].dtype.name) for key in h5}
        assert h5['split'][()].tolist() == [0] * 12 + [2] * 4
        assert h5['labels'][()].min() >= 1 and h5['predicates'][()].min() >= 1
        assert (h5['img_to_first_box'][()] >= 0).all()
    assert layout == {
        'split': ((), 'int32'), 'img_to_first_box': ((), 'int32'), 'img_to_last_box': ((), 'int32'),
        'img_to_first_rel': ((), 'int32'), 'img_to_last_rel': ((), 'int32'), 'labels': ((1,), 'int64'),
        'boxes_1024': ((4,), 'int32'), 'boxes_512': ((4,), 'int32'), 'relationships': ((2,), 'int32'),
        'predicates': ((1,), 'int64'), 'attributes': ((10,), 'int64'), 'active_object_mask': ((1,), 'bool')}
    with open(osp.join(toy_set, 'VG-SGG-dicts-with-attri.json')) as f:
        dicts = json.load(f)
    assert dicts['label_to_idx'] == {name: i + 1 for i, name in enumerate(toy.TOY_CLASSES)}
    assert dicts['idx_to_predicate'] == {str(i + 1): name for i, name in enumerate(toy.TOY_PREDICATES)}
    assert set(dicts) >= {'object_count', 'predicate_count'}
    with open(osp.join(toy_set, 'image_data.json')) as f:
        entries = json.load(f)
    assert [(e['image_id'], e['width'], e['height']) for e in entries] == [(i, SIZE, SIZE)
                                                                           for i in range(1, 17)]
    assert sorted(os.listdir(osp.join(toy_set, 'VG_100K'))) == sorted(f'{i}.jpg' for i in range(1, 17))


def centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def inside(inner, outer):
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def gap(a, b):
    return max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])


def test_predicates_follow_the_layout(toy_set):
    names = toy.TOY_PREDICATES
    seen = set()
    for record in records(toy_set, 'train') + records(toy_set, 'test'):
        boxes = [inst['bbox'] for inst in record['instances']]
        assert 2 <= len(boxes) <= 4
        by_pair = {}
        for s, o, p in record['relations'].tolist():
            by_pair.setdefault((s, o), []).append(names[p])
        for s in range(len(boxes)):
            for o in range(len(boxes)):
                if s == o:
                    continue
                found = by_pair.get((s, o), [])
                (dx, dy) = np.subtract(centre(boxes[s]), centre(boxes[o]))
                if inside(boxes[o], boxes[s]):
                    assert found == []
                elif inside(boxes[s], boxes[o]):
                    assert found == ['on']
                elif gap(boxes[s], boxes[o]) <= 0.06 * SIZE:
                    # --duplicate-rate 1.0: every near pair also carries its direction.
                    assert found[0] == 'near' and len(found) == 2
                else:
                    assert len(found) == 1 and gap(boxes[s], boxes[o]) >= 0.14 * SIZE
                    assert abs(abs(dx) - abs(dy)) >= 0.1 * SIZE
                if found and found[-1] != 'on' and found[-1] != 'near':
                    expected = ('left of' if dx < 0 else 'right of') if abs(dx) > abs(dy) else \
                        ('above' if dy < 0 else 'below')
                    assert found[-1] == expected
                seen.update(found)
    assert seen == set(names)


def test_shapes_are_drawn_in_their_boxes(toy_set):
    for record in records(toy_set, 'test'):
        image = np.asarray(Image.open(record['img_path']).convert('RGB')).astype(int)
        boxes = [inst['bbox'] for inst in record['instances']]
        for k, inst in enumerate(record['instances']):
            if any(inside(other, boxes[k]) for j, other in enumerate(boxes) if j != k):
                continue  # the centre of a container is covered by the shape on it
            x, y = (int(v) for v in centre(boxes[k]))
            colour = toy.PALETTES['real'][toy.TOY_CLASSES[inst['bbox_label']]]
            assert np.abs(image[y, x] - colour).max() < 40
            # Outside the box, two pixels left of it, is background (unless another shape is there).
            x1 = int(boxes[k][0]) - 2
            if x1 >= 0 and not any(b[0] <= x1 < b[2] and b[1] <= y < b[3] for b in boxes):
                assert np.abs(image[y, x1] - colour).max() > 40


def test_deterministic_and_styles_differ(tmp_path):
    paths = {}
    for name, extra in (('a', []), ('b', []), ('c', ['--style', 'synthetic'])):
        paths[name] = str(tmp_path / name)
        toy_cli.main([paths[name], '--num-train', '3', '--num-test', '1', '--seed', '7'] + extra)

    def arrays(root):
        with h5py.File(osp.join(root, 'VG-SGG-with-attri.h5'), 'r') as h5:
            return {key: h5[key][()] for key in h5}

    a, b, c = arrays(paths['a']), arrays(paths['b']), arrays(paths['c'])
    assert all(np.array_equal(a[key], b[key]) for key in a)
    for i in range(1, 5):
        with open(osp.join(paths['a'], 'VG_100K', f'{i}.jpg'), 'rb') as fa, \
                open(osp.join(paths['b'], 'VG_100K', f'{i}.jpg'), 'rb') as fb:
            assert fa.read() == fb.read()
    assert not np.array_equal(a['boxes_1024'], c['boxes_1024'])
    # The synthetic style: dark noisy background, other palette.
    real = np.asarray(Image.open(osp.join(paths['a'], 'VG_100K', '1.jpg'))).astype(float)
    synthetic = np.asarray(Image.open(osp.join(paths['c'], 'VG_100K', '1.jpg'))).astype(float)
    assert real[:4, :4].mean() > 180 and synthetic[:4, :4].mean() < 120


def test_val_rows_no_images_and_corrupted_ids(tmp_path):
    root = str(tmp_path / 'ids')
    summary = toy_cli.main([root, '--num-train', '3', '--num-val', '2', '--num-test', '2', '--no-images',
                        '--vg-corrupt-ids'])
    assert summary['images'] == 7 and os.listdir(osp.join(root, 'VG_100K')) == []
    with open(osp.join(root, 'image_data.json')) as f:
        ids = [entry['image_id'] for entry in json.load(f)]
    # Seven ids from 1 that avoid the corrupted ones, and the corrupted ones after them in sorted order.
    assert ids == [1, 2, 3, 4, 5, 6, 7] + sorted(VG_CORRUPTED_IMAGE_IDS)
    val = records(root, 'val', use_h5_val_split=True)
    assert [r['img_id'] for r in val] == [4, 5]
    assert [r['img_id'] for r in records(root, 'test')] == [6, 7]


def test_corrupted_entries_sit_in_sorted_position():
    ids = toy.image_ids_with_gaps(4620, VG_CORRUPTED_IMAGE_IDS)
    assert len(ids) == 4620 and not set(ids) & set(VG_CORRUPTED_IMAGE_IDS)
    entries = toy.corrupted_entries(ids)
    merged = list(ids)
    for position, entry in entries:
        merged.insert(position, entry['image_id'])
    assert merged == list(range(1, 4625))


def test_spread_hits_the_total():
    rng = np.random.default_rng(0)
    counts = toy._spread(rng, 100, np.array([2, 0, 1, 5]), np.array([1.0, 0.0, 1.0, 3.0]))
    assert counts.sum() == 100 and counts[1] == 0 and (counts >= [2, 0, 1, 5]).all()
    with pytest.raises(ValueError, match='cannot spread 3 items'):
        toy._spread(rng, 3, np.array([2, 2]), np.array([1.0, 1.0]))


@pytest.mark.parametrize('argv, message', [
    (['--style', 'cartoon'], 'invalid choice'),
    (['--min-objects', '1'], 'need 2 <= --min-objects'),
])
def test_bad_options(tmp_path, argv, message, capsys):
    with pytest.raises((SystemExit, ValueError)) as info:
        toy_cli.main([str(tmp_path / 'bad')] + argv)
    assert message in str(info.value) + capsys.readouterr().err
