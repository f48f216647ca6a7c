"""VGH5Dataset and the VG h5 helpers, on the hand-written files of tests/datasets_fixtures.py."""
import json
import os
import os.path as osp
import warnings

import h5py
import numpy as np
import pytest

from speaq_mm.datasets import SGGConcatDataset
from speaq_mm.datasets.vg_format import STATISTICS_KEYS, VGFormatError, concat_ranges, encode_boxes, read_vg_dicts
from speaq_mm.datasets.vg_h5 import VGH5Dataset
from tests.datasets_fixtures import BOXES_1024, CLASSES, PREDICATES, edit_h5, write_hand_dataset

S200 = 200 / 1024
S300 = 300 / 1024


@pytest.fixture
def files(tmp_path):
    return write_hand_dataset(str(tmp_path))


def build(files, split='train', **kwargs):
    kwargs.setdefault('num_val_images', 1)
    return VGH5Dataset(data_root=osp.dirname(files['ann_file']), split=split, **kwargs)


def boxes_of(record):
    return [inst['bbox'] for inst in record['instances']]


def labels_of(record):
    return [inst['bbox_label'] for inst in record['instances']]


def test_concat_ranges():
    assert concat_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    assert concat_ranges(np.array([], np.int64), np.array([], np.int64)).tolist() == []


def test_dicts_order_by_index(files):
    assert read_vg_dicts(files['dicts_file']) == (CLASSES, PREDICATES)


def test_records_field_by_field(files):
    val = build(files, split='val')
    assert len(val) == 1
    record = val.get_data_info(0)
    assert record['img_id'] == 10 and (record['width'], record['height']) == (200, 100)
    assert record['img_path'] == osp.join(files['img_dir'], '10.jpg')
    # (100, 50, 41, 30): x1 = trunc(100 - 20.5) = 79, y1 = 35, x2 = 120, y2 = 65, then * 200 / 1024.
    # (300, 200, 100, 51): x1 = 250, y1 = trunc(174.5) = 174, x2 = 350, y2 = 225.
    assert boxes_of(record) == [[15.4296875, 6.8359375, 23.4375, 12.6953125],
                                [48.828125, 33.984375, 68.359375, 43.9453125]]
    assert boxes_of(record)[0][0] == 79 * S200
    assert labels_of(record) == [0, 2]
    assert record['relations'].dtype == np.int64
    assert record['relations'].tolist() == [[1, 0, 2], [1, 0, 1], [0, 1, 0]]
    assert record['source'] == 'real' and record['sample_weight'] == 1.0
    assert all(inst['ignore_flag'] == 0 for inst in record['instances'])

    train = build(files, source='synthetic')
    SGGConcatDataset([train], sample_weights=dict(synthetic=0.5), statistics_sources=['synthetic'])
    assert len(train) == 2
    first = train.get_data_info(0)
    assert first['img_id'] == 13 and (first['width'], first['height']) == (100, 300)
    assert boxes_of(first) == [[6 * S300, 16 * S300, 14 * S300, 24 * S300],
                               [8 * S300, 18 * S300, 16 * S300, 26 * S300],
                               [875 * S300, 875 * S300, 925 * S300, 925 * S300]]
    assert labels_of(first) == [1, 2, 0] and first['relations'].tolist() == [[0, 1, 1]]
    assert first['source'] == 'synthetic' and first['sample_weight'] == 0.5
    assert train.get_data_info(1)['relations'].tolist() == [[1, 0, 1]]
    assert train.get_data_info(-1)['img_id'] == 16
    with pytest.raises(TypeError, match=r'set it per source with SGGConcatDataset\(sample_weights='):
        build(files, sample_weight=0.5)


def test_test_split_keeps_duplicates(files):
    test = build(files, split='test')
    assert len(test) == 1
    record = test.get_data_info(0)
    assert record['img_id'] == 14 and (record['width'], record['height']) == (512, 256)
    assert boxes_of(record) == [[45.0, 45.0, 55.0, 55.0], [65.0, 45.0, 75.0, 55.0]]
    assert record['relations'].tolist() == [[0, 1, 0], [0, 1, 0]]


def test_float_decode(files):
    record = build(files, split='val', box_decode='float').get_data_info(0)
    assert boxes_of(record) == [[79.5 * S200, 35 * S200, 120.5 * S200, 65 * S200],
                                [250 * S200, 174.5 * S200, 350 * S200, 225.5 * S200]]


def test_records_do_not_depend_on_the_storage_order(files):
    def records(split):
        return [dict(r, relations=r['relations'].tolist())
                for r in build(files, split=split, filter_empty_rels=False).load_data_list()]

    expected = [records('train'), records('test')]
    # Store the images' box and relation blocks in reverse image order.
    with h5py.File(files['ann_file'], 'r') as h5:
        arrays = {key: h5[key][()] for key in h5}
    moved = {}
    for kind, first_key, last_key, keys in (('box', 'img_to_first_box', 'img_to_last_box',
                                             ('labels', 'boxes_1024', 'boxes_512')),
                                            ('rel', 'img_to_first_rel', 'img_to_last_rel',
                                             ('relationships', 'predicates'))):
        first, last = arrays[first_key], arrays[last_key]
        blocks = [np.arange(a, b + 1) if a >= 0 else np.arange(0) for a, b in zip(first, last)][::-1]
        order = np.concatenate(blocks)
        new_first = np.cumsum([0] + [len(b) for b in blocks])[:-1][::-1]
        moved[first_key] = np.where(first >= 0, new_first, -1).astype(np.int32)
        moved[last_key] = np.where(first >= 0, new_first + last - first, -1).astype(np.int32)
        moved.update({key: arrays[key][order] for key in keys})
        if kind == 'box':
            new_position = np.empty_like(order)
            new_position[order] = np.arange(len(order))
    moved['relationships'] = new_position[moved['relationships']].astype(np.int32)
    edit_h5(files['ann_file'], **moved)
    assert [records('train'), records('test')] == expected
    assert not np.array_equal(moved['img_to_first_box'], arrays['img_to_first_box'])


def test_float_boxes_in_the_file_are_not_truncated(files):
    with h5py.File(files['ann_file'], 'r') as h5:
        boxes = h5['boxes_1024'][()].astype(np.float64)
    edit_h5(files['ann_file'], boxes_1024=boxes)
    # The reference writes the corner back into a float array: 79.5 stays 79.5.
    assert boxes_of(build(files, split='val').get_data_info(0))[0][0] == 79.5 * S200


def test_without_empty_rel_filter(files):
    train = build(files, filter_empty_rels=False)
    assert [train.get_data_info(i)['img_id'] for i in range(len(train))] == [12, 13, 16]
    assert train.get_data_info(0)['relations'].shape == (0, 3)
    test = build(files, split='test', filter_empty_rels=False)
    assert [test.get_data_info(i)['img_id'] for i in range(len(test))] == [14, 15]


def test_non_overlap_filter_is_train_only(files):
    train = build(files, filter_non_overlap=True)
    # Row 6's two boxes are far apart, so its only relation and then the image go.
    assert [train.get_data_info(i)['img_id'] for i in range(len(train))] == [13]
    assert len(build(files, split='val', filter_non_overlap=True)) == 1
    assert train.metainfo['fg_rel_count'].tolist() == [0, 1, 0]


def test_statistics(files):
    for split in ('train', 'val', 'test'):
        meta = build(files, split=split).metainfo
        assert meta['classes'] == CLASSES and meta['predicates'] == PREDICATES
        assert meta['obj_count'].dtype == np.int64 and meta['obj_count'].tolist() == [2, 2, 1]
        assert meta['fg_rel_count'].dtype == np.int64 and meta['fg_rel_count'].tolist() == [0, 2, 0]
        assert meta['triplets'].tolist() == [[0, 1, 1], [1, 2, 1]]
        assert meta['split_counts'] == {'train': dict(images=2, objects=5, relations=2),
                                        'val': dict(images=1, objects=2, relations=3),
                                        'test': dict(images=1, objects=2, relations=2)}
    assert set(STATISTICS_KEYS) <= set(meta)
    assert 'fg_rel_count' not in build(files, with_statistics=False).metainfo


def test_statistics_raise_without_train_relations(files):
    edit_h5(files['ann_file'], img_to_first_rel=np.full(7, -1, np.int32),
            img_to_last_rel=np.full(7, -1, np.int32))
    with pytest.raises(ValueError, match='train split .* has no relations'):
        build(files, split='test', filter_empty_rels=False)
    assert len(build(files, split='test', filter_empty_rels=False, with_statistics=False)) == 2


def test_h5_val_split(files):
    split = np.array([0, 0, 0, 1, 2, 2, 0], np.int32)
    edit_h5(files['ann_file'], split=split)
    val = build(files, split='val', use_h5_val_split=True)
    assert [val.get_data_info(i)['img_id'] for i in range(len(val))] == [13]
    train = build(files, use_h5_val_split=True)
    assert [train.get_data_info(i)['img_id'] for i in range(len(train))] == [10, 16]


def test_subsets(files):
    train = build(files, filter_empty_rels=False, indices=[2, 0])
    assert [train.get_data_info(i)['img_id'] for i in range(len(train))] == [16, 12]
    full = build(files, filter_empty_rels=False)
    subset = full.get_subset(-1)
    assert len(subset) == 1 and subset.get_data_info(0)['img_id'] == 16 and len(full) == 3
    full.get_subset_([1])
    assert len(full) == 1 and full.get_data_info(0)['img_id'] == 13
    assert len(full.load_data_list()) == 1
    with pytest.raises(IndexError):
        full.get_data_info(1)


def test_lazy_init(files):
    dataset = build(files, lazy_init=True)
    assert dataset.metainfo['classes'] == CLASSES and 'fg_rel_count' not in dataset.metainfo
    assert len(dataset) == 2 and 'fg_rel_count' in dataset.metainfo


def test_json_without_corrupted_entries(files):
    with open(files['image_data_file']) as f:
        entries = [e for e in json.load(f) if e['image_id'] != 1722]
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries, f)
    assert build(files, split='val').get_data_info(0)['width'] == 200


def test_string_image_ids_and_suffix(files):
    with open(files['image_data_file']) as f:
        entries = json.load(f)
    for entry in entries:
        entry['image_id'] = f'scene_{entry["image_id"]:06d}'
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries, f)
    # 'scene_001722' is not a corrupted id, so the json is one entry too long.
    with pytest.raises(VGFormatError, match='8 entries .* 7 image rows'):
        build(files)
    del entries[2]
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries, f)
    record = build(files, split='val', img_suffix='.png').get_data_info(0)
    assert record['img_id'] == 'scene_000010' and record['img_path'].endswith('scene_000010.png')


def test_degenerate_boxes_dropped_with_one_warning(files):
    boxes = [list(image) for image in BOXES_1024]
    boxes[3][0] = (10, 20, 0, 8)
    boxes[5][0] = (600, 600, 10, -3)
    relations = [[(1, 0, 2), (1, 0, 1), (0, 1, 0)], [], [], [(0, 1, 1), (2, 1, 0)], [(0, 1, 0), (0, 1, 0)],
                 [], [(1, 0, 1)]]
    write_hand_dataset(osp.dirname(files['ann_file']), boxes_1024=boxes, relations=relations)
    with pytest.warns(UserWarning, match=r'dropped 2 boxes .* \(in 2 images\) and the 1 relations') as record:
        train = build(files)
    assert len(record) == 1
    first = train.get_data_info(0)
    assert first['img_id'] == 13 and labels_of(first) == [2, 0] and first['relations'].tolist() == [[1, 0, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the file was read, and the warning given, once for both splits
        test = build(files, split='test', filter_empty_rels=False)
    assert [test.get_data_info(i)['img_id'] for i in range(len(test))] == [14]


def test_splits_share_one_copy_until_the_file_changes(files):
    train, val = build(files), build(files, split='val')
    assert train._view.graphs is val._view.graphs
    edit_h5(files['ann_file'], split=np.array([0, 0, 0, 0, 2, 2, 2], np.int32))
    test = build(files, split='test')
    assert test._view.graphs is not train._view.graphs
    assert [test.get_data_info(i)['img_id'] for i in range(len(test))] == [14, 16]
    assert len(train) == 2  # the datasets built before keep the data they loaded


def test_encode_boxes():
    # A 512 x 256 image: scale 1024 / 512 = 2; x1 = floor(2 x1), w = ceil(2 w), cx = x1 + w // 2.
    encoded = encode_boxes(np.array([[10, 20, 110, 70], [0, 0, 512, 256], [0.3, 0.3, 10.2, 10.2]]),
                           np.array([[512, 256]] * 3))
    assert encoded.dtype == np.int32
    assert encoded.tolist() == [[120, 90, 200, 100], [512, 256, 1024, 512], [10, 10, 20, 20]]


# ----------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('key', ['ann_file', 'image_data_file', 'dicts_file'])
def test_missing_file(files, key):
    os.remove(files[key])
    with pytest.raises(FileNotFoundError, match=f'{key} "{files[key]}" does not exist'):
        build(files)


def test_missing_image_folder(files):
    os.rmdir(files['img_dir'])
    with pytest.raises(FileNotFoundError, match=f'data_prefix.img folder "{files["img_dir"]}'):
        build(files)


def test_missing_h5_keys(files):
    edit_h5(files['ann_file'], predicates=None, img_to_last_rel=None)
    with pytest.raises(VGFormatError, match=r"missing h5 keys \['img_to_last_rel', 'predicates'\]"):
        build(files)


def test_not_an_h5(files):
    with open(files['ann_file'], 'w') as f:
        f.write('not hdf5')
    with pytest.raises(VGFormatError, match='cannot open the h5 file'):
        build(files)


def test_box_range_outside_arrays(files):
    edit_h5(files['ann_file'], img_to_last_box=np.array([1, -1, 2, 5, 7, 99, 11], np.int32))
    with pytest.raises(VGFormatError, match=r'img_to_first_box/img_to_last_box of image row 5 = \(8, 99\)'):
        build(files)


def test_half_empty_range(files):
    edit_h5(files['ann_file'], img_to_last_rel=np.array([2, -1, -1, 3, 5, 2, 6], np.int32))
    with pytest.raises(VGFormatError, match='img_to_first_rel/img_to_last_rel of image row 5'):
        build(files)


def test_relation_range_outside_arrays(files):
    edit_h5(files['ann_file'], img_to_last_rel=np.array([2, -1, -1, 3, 5, -1, 7], np.int32))
    with pytest.raises(VGFormatError, match=r'img_to_first_rel/img_to_last_rel of image row 6 = \(6, 7\) is not '
                                            r'an inclusive range into the 7 relations'):
        build(files)


def test_relation_outside_its_image(files):
    with_bad = np.array([[1, 0], [1, 0], [0, 1], [3, 4], [6, 7], [6, 7], [10, 2]], np.int32)
    edit_h5(files['ann_file'], relationships=with_bad)
    with pytest.raises(
            VGFormatError, match=r'"relationships" row 6 = \[10, 2\] \(of image row 6\) points outside '
            r"that image's boxes 9..10"):
        build(files)


def test_labels_and_predicates_out_of_range(files):
    edit_h5(files['ann_file'], labels=np.array([[1], [3], [2], [2], [3], [4], [1], [2], [3], [2], [1]]))
    with pytest.raises(VGFormatError, match=r'"labels" row 5 = 4 is outside 1..3'):
        build(files)
    write_hand_dataset(osp.dirname(files['ann_file']))
    edit_h5(files['ann_file'], predicates=np.array([[3], [2], [1], [2], [0], [1], [2]]))
    with pytest.raises(VGFormatError, match=r'"predicates" row 4 = 0 is outside 1..3'):
        build(files)


def test_wrong_shapes(files):
    edit_h5(files['ann_file'], boxes_1024=np.zeros((11, 3), np.int32))
    with pytest.raises(VGFormatError, match=r'"boxes_1024" must have shape \(N, 4\)'):
        build(files)
    write_hand_dataset(osp.dirname(files['ann_file']))
    edit_h5(files['ann_file'], labels=np.ones((10, 1), np.int64))
    with pytest.raises(VGFormatError, match='"labels" .* one row per box'):
        build(files)


def test_image_data_length_mismatch(files):
    with open(files['image_data_file']) as f:
        entries = json.load(f)
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries[:-2], f)
    with pytest.raises(VGFormatError,
                       match=r'image_data.json: the image-data json has 6 entries \(5 after skipping'):
        build(files)


def test_image_data_bad_entry(files):
    with open(files['image_data_file']) as f:
        entries = json.load(f)
    del entries[3]['height']
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries, f)
    with pytest.raises(VGFormatError, match='entry 3 has no field "height"'):
        build(files)
    entries[3]['height'] = 0
    with open(files['image_data_file'], 'w') as f:
        json.dump(entries, f)
    with pytest.raises(VGFormatError, match='entry 3 has height=0'):
        build(files)


def test_bad_dicts(files):
    with open(files['dicts_file'], 'w') as f:
        json.dump(dict(label_to_idx={'cat': 1, 'dog': 3}, predicate_to_idx={'on': 1}), f)
    with pytest.raises(VGFormatError, match='"label_to_idx" must map its 2 names to the indices 1..2'):
        build(files)
    with open(files['dicts_file'], 'w') as f:
        json.dump(dict(label_to_idx={'cat': 1}), f)
    with pytest.raises(VGFormatError, match='"predicate_to_idx" .* is missing'):
        build(files)


def test_empty_split(files):
    with pytest.raises(ValueError, match='split "val" of .* is empty'):
        build(files, split='val', use_h5_val_split=True)
    # A val carve-out as large as the usable split-0 images leaves nothing to train on: the error names the key.
    for split in ('train', 'test'):  # a test dataset still computes its statistics from the train split
        with pytest.raises(ValueError, match='num_val_images=5 takes all 3 usable split-0 images .* leaves none to '
                                             'train on'):
            build(files, split=split, num_val_images=5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(split='trainval'), 'split must be one of'),
    (dict(box_decode='round'), 'box_decode must be one of'),
    (dict(num_val_images=-1), 'num_val_images must be an int >= 0'),
    (dict(filter_cfg=dict(filter_empty_gt=True)), 'filter_cfg is not supported'),
    (dict(metainfo=dict(classes=('a', 'b', 'c'))), 'metainfo.classes differs'),
])
def test_bad_options(files, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(files, **kwargs)
