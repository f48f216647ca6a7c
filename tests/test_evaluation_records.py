"""The dump format: converting data samples, loading dumps, zero-shot triplet and metainfo files."""
import json
import pickle

import numpy as np
import pytest
import torch

from speaq_mm.evaluation.records import (
    check_record,
    dataset_meta_to_json,
    load_dataset_meta,
    load_prediction_dump,
    load_zeroshot_triplets,
    record_from_data_sample,
)
from tests.evaluation_fixtures import data_sample_dict, rank_boundary_record, two_object_record


def assert_same_record(converted, record):
    assert converted['img_id'] == record['img_id']
    for key, value in record.items():
        if key != 'img_id':
            np.testing.assert_array_equal(converted[key], value)
            assert converted[key].dtype.kind == np.asarray(value).dtype.kind, key


def test_record_from_data_sample_reads_the_documented_fields():
    record = rank_boundary_record()
    assert_same_record(record_from_data_sample(data_sample_dict(record)), record)


def test_record_from_data_sample_unwraps_box_objects():
    class Boxes:  # stands in for mmdet's HorizontalBoxes, which keeps its tensor in .tensor
        def __init__(self, tensor):
            self.tensor = tensor

    record = two_object_record(3, predicate=1, hit_rank=2)
    sample = data_sample_dict(record)
    sample['gt_instances']['bboxes'] = Boxes(sample['gt_instances']['bboxes'])
    assert_same_record(record_from_data_sample(sample), record)


def test_record_from_data_sample_names_missing_fields():
    sample = data_sample_dict(two_object_record(5, predicate=0, hit_rank=0))
    del sample['pred_relations']
    with pytest.raises(KeyError, match=r"img_id=5.*'pred_relations'"):
        record_from_data_sample(sample)
    sample = data_sample_dict(two_object_record(6, predicate=0, hit_rank=0))
    del sample['gt_relations']['labels']
    with pytest.raises(KeyError, match=r"img_id=6\) gt_relations.*'labels'"):
        record_from_data_sample(sample)


def test_record_from_data_sample_rejects_misshapen_relations():
    sample = data_sample_dict(two_object_record(8, predicate=0, hit_rank=0))
    sample['gt_relations']['labels'] = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r'img_id=8\): gt_relations needs pairs \(R, 2\) and labels \(R,\)'):
        record_from_data_sample(sample)
    sample = data_sample_dict(two_object_record(9, predicate=0, hit_rank=0))
    sample['pred_instances']['bboxes'] = torch.zeros(2, 5)
    with pytest.raises(ValueError, match=r'img_id=9\): field pred_bboxes must have shape \(n, 4\)'):
        record_from_data_sample(sample)


def test_check_record_accepts_empty_fields_in_any_shape():
    record = two_object_record(1, predicate=0, hit_rank=0)
    record.update(gt_relations=np.zeros(0), pred_rel_pairs=[], pred_rel_labels=[],
                  pred_rel_scores=np.zeros((0, 4), np.float32))
    checked = check_record(record, 'x')
    assert checked['gt_relations'].shape == (0, 3) and checked['pred_rel_pairs'].shape == (0, 2)
    assert checked['pred_rel_scores'].shape == (0, 4)


def test_load_prediction_dump_reads_records_and_raw_data_samples(tmp_path):
    records = [rank_boundary_record(1), two_object_record(2, predicate=2, hit_rank=None)]
    for name, entries in (('records.pkl', records), ('samples.pkl', [data_sample_dict(r) for r in records])):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(entries))
        for loaded, record in zip(load_prediction_dump(str(path)), records):
            assert_same_record(check_record(loaded, name), record)


def test_load_prediction_dump_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pkl'):
        load_prediction_dump(str(tmp_path / 'missing.pkl'))
    not_a_list = tmp_path / 'dict.pkl'
    not_a_list.write_bytes(pickle.dumps({'img_id': 1}))
    with pytest.raises(ValueError, match='dict.pkl: expected a list'):
        load_prediction_dump(str(not_a_list))
    odd_entry = tmp_path / 'odd.pkl'
    odd_entry.write_bytes(pickle.dumps([rank_boundary_record(), {'boxes': 1}]))
    with pytest.raises(ValueError, match='odd.pkl entry 1: neither a scene graph record'):
        load_prediction_dump(str(odd_entry))
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='garbage.pkl: not a readable pickle'):
        load_prediction_dump(str(garbage))
    broken_sample = data_sample_dict(rank_boundary_record())
    del broken_sample['gt_instances']
    broken = tmp_path / 'broken.pkl'
    broken.write_bytes(pickle.dumps([broken_sample]))
    with pytest.raises(ValueError, match=r"broken.pkl entry 0: data sample \(img_id=1\): no field "
                                         r"'gt_instances'"):
        load_prediction_dump(str(broken))


def test_load_zeroshot_triplets_in_each_format(tmp_path):
    rows = np.array([[0, 1, 2], [149, 3, 49]])
    np.save(tmp_path / 'zs.npy', rows)
    (tmp_path / 'zs.json').write_text(json.dumps(rows.tolist()))
    torch.save(torch.from_numpy(rows + 1), tmp_path / 'zeroshot_triplet.pytorch')  # the reference is 1-based
    for name in ('zs.npy', 'zs.json', 'zeroshot_triplet.pytorch'):
        loaded = load_zeroshot_triplets(str(tmp_path / name))
        np.testing.assert_array_equal(loaded, rows)
        assert loaded.dtype == np.int64


def test_load_zeroshot_triplets_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.npy'):
        load_zeroshot_triplets(str(tmp_path / 'nope.npy'))
    (tmp_path / 'zs.txt').write_text('0 1 2')
    with pytest.raises(ValueError, match="zs.txt.*extension '.txt'"):
        load_zeroshot_triplets(str(tmp_path / 'zs.txt'))
    np.save(tmp_path / 'pairs.npy', np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r'pairs.npy: triplets must be integer rows.*\(4, 2\)'):
        load_zeroshot_triplets(str(tmp_path / 'pairs.npy'))
    np.save(tmp_path / 'negative.npy', np.array([[-1, 0, 0]]))
    with pytest.raises(ValueError, match='negative.npy: triplets hold negative class ids'):
        load_zeroshot_triplets(str(tmp_path / 'negative.npy'))
    (tmp_path / 'bad.json').write_text('[[0, 1')
    with pytest.raises(ValueError, match='bad.json: not valid JSON'):
        load_zeroshot_triplets(str(tmp_path / 'bad.json'))


def test_dataset_meta_files_round_trip(tmp_path):
    meta = {'classes': ('cat', 'dog'), 'predicates': ('on',), 'fg_rel_count': np.array([4]),
            'triplets': np.array([[0, 1, 0]]), 'unrelated': 'dropped'}
    as_json = dataset_meta_to_json(meta)
    assert as_json == {'classes': ['cat', 'dog'], 'predicates': ['on'], 'fg_rel_count': [4],
                       'triplets': [[0, 1, 0]]}
    (tmp_path / 'meta.json').write_text(json.dumps(as_json))
    (tmp_path / 'meta.pkl').write_bytes(pickle.dumps(meta))
    assert load_dataset_meta(str(tmp_path / 'meta.json')) == as_json
    assert load_dataset_meta(str(tmp_path / 'meta.pkl'))['predicates'] == ('on',)
    with pytest.raises(ValueError, match='meta.yaml: dataset metainfo must be a .json or .pkl'):
        (tmp_path / 'meta.yaml').write_text('a: 1')
        load_dataset_meta(str(tmp_path / 'meta.yaml'))
    (tmp_path / 'list.json').write_text('[1]')
    with pytest.raises(ValueError, match='list.json: dataset metainfo must be a dict'):
        load_dataset_meta(str(tmp_path / 'list.json'))
