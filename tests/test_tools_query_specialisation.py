"""tools/analysis/query_specialisation.py on the test dump and checkpoint of the shared toy run."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from speaq_mm.evaluation.records import to_numpy
from speaq_mm.models.task_modules.predicate_groups import build_predicate_group_layout
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import NUM_TEST_IMAGES, TOY_MIX_CONFIG, assert_drawing, figure_panels, read_png

query_specialisation = load_tool('tools/analysis/query_specialisation.py')


@pytest.fixture(scope='module')
def report(toy_run, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('query_specialisation')
    return query_specialisation.main([toy_run.raw_dump, '--config', TOY_MIX_CONFIG, '--checkpoint', toy_run.checkpoint,
                                      '--topk', '10', '--out-dir', str(out_dir)]), out_dir


def test_counts_match_the_dump_and_the_model_layout(toy_run, report):
    result, out_dir = report
    with open(toy_run.raw_dump, 'rb') as file:
        samples = pickle.load(file)
    assert len(samples) == NUM_TEST_IMAGES
    queries = np.concatenate([to_numpy(s['pred_relations']['query_ids'])[:10] for s in samples])
    labels = np.concatenate([to_numpy(s['pred_relations']['labels'])[:10] for s in samples])
    expected = np.zeros((32, 6), np.int64)  # the tiny model: 32 relation queries, 6 predicates
    np.add.at(expected, (queries, labels), 1)
    assert np.array_equal(result['query_counts'], expected)
    meta = torch.load(toy_run.checkpoint, map_location='cpu', weights_only=False)['meta']['dataset_meta']
    layout = build_predicate_group_layout(meta['fg_rel_count'], 2, 16, 32)  # speaq_tiny.py: 2 groups
    query_group = layout.query_group.numpy()
    assert np.array_equal(result['group_counts'], np.stack([expected[query_group == g].sum(0) for g in (0, 1)]))
    own = sum(expected[query_group == g][:, layout.predicate_group.numpy() == g].sum() for g in (0, 1))
    assert result['specialisation'] == pytest.approx(own / expected.sum())
    assert [g['queries'] for g in result['groups']] == [list(r) for r in layout.relation_query_ranges]
    with open(out_dir / 'query_specialisation.json') as file:
        written = json.load(file)
    assert written['triplets'] == int(expected.sum()) and written['images'] == NUM_TEST_IMAGES
    assert written['settings']['num_groups'] == 2 and written['query_counts'] == expected.tolist()


def test_heat_map_figure_has_two_panels(report):
    result, _ = report
    image = read_png(result['figure'])
    assert_drawing(image)
    assert result['panels'] == 2 and figure_panels(image) == 2
    # 6 predicates: two panels of the minimum width (6 in) side by side, 100 dpi.
    assert image.shape[1] == 1200


def test_reads_the_dump_tools_test_writes(toy_run, tmp_path):
    """tools/test.py --out writes scene graph records; they carry the query ids the report needs."""
    with open(toy_run.dump, 'rb') as file:
        records = pickle.load(file)
    assert all(len(r['pred_rel_query_ids']) == len(r['pred_rel_labels']) for r in records)
    from_records = query_specialisation.main([toy_run.dump, '--config', TOY_MIX_CONFIG, '--checkpoint',
                                              toy_run.checkpoint, '--out-dir', str(tmp_path)])
    from_samples = query_specialisation.main([toy_run.raw_dump, '--config', TOY_MIX_CONFIG, '--checkpoint',
                                              toy_run.checkpoint, '--out-dir', str(tmp_path / 'samples')])
    assert from_records['query_counts'].sum() > 0
    assert np.array_equal(from_records['query_counts'], from_samples['query_counts'])


def test_names_and_counts_from_the_metainfo_file_of_tools_test(toy_run, tmp_path):
    checkpoint = torch.load(toy_run.checkpoint, map_location='cpu', weights_only=False)
    checkpoint['meta'].pop('dataset_meta')
    bare = tmp_path / 'bare.pth'
    torch.save(checkpoint, bare)
    with pytest.raises(KeyError, match='fg_rel_count'):
        query_specialisation.main([toy_run.raw_dump, '--config', TOY_MIX_CONFIG, '--checkpoint', str(bare), '--out-dir',
                                   str(tmp_path)])
    meta_file = osp.splitext(toy_run.dump)[0] + '_meta.json'  # written by tools/test.py --out
    result = query_specialisation.main([toy_run.raw_dump, '--checkpoint', str(bare), '--dataset-meta', meta_file,
                                        '--config', TOY_MIX_CONFIG, '--out-dir', str(tmp_path)])
    assert result['query_counts'].sum() > 0


def test_bad_inputs_name_the_problem(toy_run, tmp_path):
    with open(toy_run.dump, 'rb') as file:
        records = pickle.load(file)
    for record in records:
        record.pop('pred_rel_query_ids', None)
    no_ids = tmp_path / 'no_ids.pkl'
    with open(no_ids, 'wb') as file:
        pickle.dump(records, file)
    with pytest.raises(KeyError, match='pred_rel_query_ids'):
        query_specialisation.main([str(no_ids), '--config', TOY_MIX_CONFIG, '--checkpoint', toy_run.checkpoint,
                                   '--out-dir', str(tmp_path)])
    smaller = tmp_path / 'smaller.py'
    smaller.write_text(f"_base_ = ['{TOY_MIX_CONFIG}']\nmodel = dict(num_entity_queries=4, num_relation_queries=8)\n")
    with pytest.raises(ValueError, match='does not come from this model config'):
        query_specialisation.main([toy_run.raw_dump, '--checkpoint', toy_run.checkpoint, '--config', str(smaller),
                                   '--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='prediction dump'):
        query_specialisation.main([str(tmp_path / 'none.pkl'), '--config', TOY_MIX_CONFIG, '--checkpoint',
                                   toy_run.checkpoint])
    with pytest.raises(SystemExit):  # the model settings come from --config only, never from a checkpoint
        query_specialisation.main([toy_run.raw_dump, '--dataset-meta', osp.splitext(toy_run.dump)[0] + '_meta.json'])


def test_specialisation_of_a_hand_made_layout():
    counts = np.array([5.0, 4, 2, 1, 1, 1])
    layout = build_predicate_group_layout(counts, 2, 4, 8)
    # Predicate 0 alone in group 0 (5 < 14 / 2, 5 + 4 is not); group 0 gets 1 entity slot = queries 0-1.
    assert layout.predicate_group.tolist() == [0, 1, 1, 1, 1, 1]
    assert layout.query_group.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    report = query_specialisation.specialisation_report(
        np.array([0, 1, 1, 2, 7, 7]), np.array([0, 0, 2, 1, 0, 3]), layout, tuple('abcdef'), counts)
    assert report['group_counts'].tolist() == [[2, 0, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0]]
    assert [g['specialisation'] for g in report['groups']] == [pytest.approx(2 / 3), pytest.approx(2 / 3)]
    assert report['specialisation'] == pytest.approx(4 / 6)
    assert report['predicate_order'] == [0, 1, 2, 3, 4, 5]
