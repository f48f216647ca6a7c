"""Hand-built images where every metric's value is known, for the numpy evaluation core."""
import numpy as np
import pytest

from speaq_mm.evaluation.sgg_core import box_iou_aligned, compute_image_stats, iter_image_stats
from speaq_mm.evaluation.sgg_summary import evaluation_settings, format_summary, frequency_groups, summarize_image_stats
from speaq_mm.testing import evaluation_oracle as oracle
from tests.evaluation_fixtures import (
    NUM_PREDICATES,
    box,
    make_record,
    rank_boundary_record,
    score_rows,
    two_object_record,
)


def evaluate(records, topk=(20, 50, 100), **kwargs):
    summary_keys = ('seen_triplets', 'zeroshot_triplets', 'predicate_groups', 'reference_compat',
                    'train_counts', 'predicate_names')
    summary_args = {key: kwargs.pop(key) for key in summary_keys if key in kwargs}
    stats = compute_image_stats(records, max_k=max(topk), **kwargs)
    return summarize_image_stats(stats, topk=topk, num_predicates=NUM_PREDICATES, **summary_args)


def test_iou_uses_continuous_coordinates():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    others = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=np.float32)
    np.testing.assert_array_equal(box_iou_aligned(boxes, others), np.float32([50 / 150, 0, 1]))


def test_hits_at_rank_20_count_for_r20_and_rank_21_does_not():
    summary = evaluate([rank_boundary_record()])
    assert summary['R@20'] == 0.5  # the triplet at 0-based rank 19 is the 20th
    assert summary['R@50'] == summary['R@100'] == 1.0
    # No graph constraint ranks the 25 tied 0.6 cells in row order, so the same boundary holds.
    assert summary['ngR@20'] == 0.5 and summary['ngR@50'] == 1.0
    per_predicate = {row['predicate']: row for row in summary['per_predicate']}
    assert per_predicate[0]['R@20'] == 1.0 and per_predicate[1]['R@20'] == 0.0
    assert per_predicate[1]['R@50'] == 1.0


def test_predicate_absent_from_the_test_set_counts_zero_in_mean_recall():
    summary = evaluate([rank_boundary_record()])
    absent = summary['per_predicate'][2]
    assert absent['test_count'] == 0 and absent['R@50'] == 0.0
    assert summary['mR@20'] == 1 / 3
    assert summary['mR@50'] == 2 / 3
    assert summary['F@20'] == 2 * 0.5 * (1 / 3) / (0.5 + 1 / 3)


def test_mean_recall_averages_per_image_recalls_then_predicates():
    # Image 1: predicate 0 hit 1 of 2; image 2: predicate 0 hit 1 of 1; predicate 1 never in the GT.
    first = make_record(1, [box(0, 0), box(50, 50), box(100, 0)], [0, 1, 2], [[0, 1, 0], [2, 1, 0]],
                        pairs=[[0, 1]], rel_labels=[0])
    second = two_object_record(2, predicate=0, hit_rank=0, num_triplets=1)
    summary = evaluate([first, second])
    assert summary['per_predicate'][0]['R@20'] == (0.5 + 1.0) / 2  # not the pooled 2/3
    assert summary['mR@20'] == 0.75 / 3
    assert summary['R@20'] == 0.75


def test_duplicate_gt_triplets_are_both_hit_by_one_prediction():
    # Relations 0 and 1 are the same triplet on the same boxes; box 2 duplicates box 0 with its label.
    record = make_record(1, [box(0, 0), box(50, 50), box(0, 0)], [0, 1, 0], [[0, 1, 2], [0, 1, 2], [2, 1, 2]],
                         pairs=[[0, 1]], rel_labels=[2])
    summary = evaluate([record])
    assert summary['R@20'] == 1.0
    assert summary['per_predicate'][2]['test_count'] == 3


def test_iou_exactly_at_threshold_matches():
    gt = [box(0, 0), box(50, 50)]
    half = [[0, 0, 10, 5], [50, 50, 60, 60]]  # subject IoU 50 / 100 = 0.5 exactly
    below = [[0, 0, 10, 4.9], [50, 50, 60, 60]]
    matching = make_record(1, gt, [0, 1], [[0, 1, 0]], pred_boxes=half, pairs=[[0, 1]], rel_labels=[0])
    missing = make_record(2, gt, [0, 1], [[0, 1, 0]], pred_boxes=below, pairs=[[0, 1]], rel_labels=[0])
    assert evaluate([matching])['R@20'] == 1.0
    assert evaluate([missing])['R@20'] == 0.0
    stats = compute_image_stats([matching], iou_thr=0.51)
    assert stats[0]['rank_graph'][0] == 100  # no hit within max_k


def test_no_relation_column_is_ignored():
    # The only triplet's no-relation score (last column) is the largest; its real predicate 1 still counts,
    # and without graph constraint the single best cell is predicate 1, not the no-relation column.
    rows = np.float32([[0.05, 0.2, 0.05, 0.7]])
    record = make_record(1, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 1]], pairs=[[0, 1]], rel_labels=[1],
                         rel_scores=rows)
    summary = evaluate([record], topk=(1,))
    assert summary['R@1'] == 1.0 and summary['ngR@1'] == 1.0


def test_no_graph_constraint_ranks_every_predicate_of_every_triplet():
    # GT predicate 1; the triplet's own label is 0 (score 0.6), predicate 1 is its second-best cell.
    rows = np.float32([[0.6, 0.3, 0.05, 0.05]])
    record = make_record(1, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 1]], pairs=[[0, 1]], rel_labels=[0],
                         rel_scores=rows)
    summary = evaluate([record], topk=(1, 2))
    assert summary['R@2'] == 0.0
    assert summary['ngR@1'] == 0.0 and summary['ngR@2'] == 1.0


def test_no_graph_mean_recall_averages_per_image_no_graph_recalls_then_predicates():
    # Image 1: predicate 1 is the triplet's second-best cell, so it is hit without graph constraint only.
    rows = np.float32([[0.6, 0.3, 0.05, 0.05]])
    first = make_record(1, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 1]], pairs=[[0, 1]], rel_labels=[0],
                        rel_scores=rows)
    # Image 2: predicate 1 twice (one hit at the first cell, one never predicted), predicate 0 missed.
    second = make_record(2, [box(0, 0), box(50, 50), box(100, 0)], [0, 1, 2], [[0, 1, 1], [2, 1, 1], [1, 2, 0]],
                         pairs=[[0, 1]], rel_labels=[1], rel_scores=np.float32([[0.1, 0.8, 0.05, 0.05]]))
    summary = evaluate([first, second], topk=(2, 3))
    per_predicate = {row['predicate']: row for row in summary['per_predicate']}
    assert per_predicate[1]['ngR@2'] == (1.0 + 0.5) / 2 and per_predicate[1]['R@2'] == (0.0 + 0.5) / 2
    assert per_predicate[0]['ngR@2'] == 0.0 and per_predicate[2]['ngR@2'] == 0.0  # 2: absent, counts 0
    assert summary['ngmR@2'] == 0.75 / 3
    assert summary['mR@2'] == 0.25 / 3


def test_no_graph_ties_keep_row_order():
    # Rows 0 and 1 score the same cell value for predicate 1; row 0 pairs the wrong boxes, row 1 the GT ones.
    rows = np.float32([[0, 0.5, 0, 0.5], [0, 0.5, 0, 0.5]])
    record = make_record(1, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 1]], pairs=[[1, 0], [0, 1]],
                         rel_labels=[1, 1], rel_scores=rows)
    summary = evaluate([record], topk=(1, 2))
    assert summary['ngR@1'] == 0.0 and summary['ngR@2'] == 1.0


def test_images_without_gt_relations_are_skipped():
    hit = two_object_record(1, predicate=0, hit_rank=0)
    no_relation = make_record(2, [box(0, 0)], [0], np.zeros((0, 3)), pairs=[[0, 0]], rel_labels=[0])
    summary = evaluate([hit, no_relation])
    assert summary['R@20'] == 1.0
    assert summary['images']['evaluated'] == 1 and summary['images']['without_gt_relation'] == 1


def test_images_without_predictions_count_zero_unless_reference_compat():
    hit = two_object_record(1, predicate=0, hit_rank=0)
    empty = make_record(2, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 0]], pairs=np.zeros((0, 2)),
                        rel_labels=[], rel_scores=np.zeros((0, NUM_PREDICATES + 1)))
    assert evaluate([hit, empty])['R@20'] == 0.5
    compat = evaluate([hit, empty], reference_compat=True)
    assert compat['R@20'] == 1.0 and compat['images']['without_prediction'] == 1
    assert compat['images']['evaluated'] == 1


def test_zero_shot_recall_from_seen_or_listed_triplets():
    # Image 1: unseen triplet (0, 1, 2) hit, seen (2, 3, 0) missed; image 2 has only seen triplets.
    first = make_record(1, [box(0, 0), box(50, 50), box(100, 0), box(150, 50)], [0, 1, 2, 3],
                        [[0, 1, 2], [2, 3, 0]], pairs=[[0, 1]], rel_labels=[2])
    second = make_record(2, [box(0, 0), box(50, 50)], [2, 3], [[0, 1, 0]], pairs=[[1, 0]], rel_labels=[0])
    seen = np.array([[2, 3, 0], [5, 5, 1]])
    by_seen = evaluate([first, second], seen_triplets=seen)
    by_list = evaluate([first, second], zeroshot_triplets=np.array([[0, 1, 2]]))
    assert by_seen['zR@20'] == by_list['zR@20'] == 1.0  # image 2 has no zero-shot GT, so it is not averaged
    assert by_seen['images']['with_zeroshot_gt'] == 1
    assert by_seen['R@20'] == 0.25
    assert 'zR@20' not in evaluate([second], seen_triplets=seen)


def test_predicate_groups_average_their_per_predicate_recall():
    summary = evaluate([rank_boundary_record()], predicate_groups=frequency_groups([10, 30, 20], (1, 1)))
    assert summary['head_mR@20'] == 0.0  # predicate 1 (most frequent) is hit at rank 20 only
    assert summary['body_mR@20'] == 0.0  # predicate 2 is absent
    assert summary['tail_mR@20'] == 1.0  # predicate 0
    assert frequency_groups([5, 9, 9, 1], (1, 2)) == {'head': [1], 'body': [0, 2], 'tail': [3]}


def test_chunking_does_not_change_statistics():
    records = [two_object_record(i, predicate=i % 3, hit_rank=i % 4 if i % 5 else None) for i in range(12)]
    records.append(rank_boundary_record(img_id=99))
    whole = compute_image_stats(records)
    for chunk_size in (1, 5):
        chunked = list(iter_image_stats(records, chunk_size=chunk_size))
        for a, b in zip(whole, chunked):
            np.testing.assert_array_equal(a['rank_graph'], b['rank_graph'])
            np.testing.assert_array_equal(a['rank_no_graph'], b['rank_no_graph'])


def test_vectorised_core_equals_the_loop_implementation_with_ties():
    records = oracle.synthetic_chunk(seed=3, chunk_index=0, first_image=0, count=40, num_triplets=150)
    for record in records:  # coarse scores create many ties, which the rankings must break identically
        record['pred_rel_scores'] = np.round(record['pred_rel_scores'] * 4) / 4
        record['pred_scores'] = np.round(record['pred_scores'] * 4) / 4
    # "Training" triplets: those of every other image, so the rest of the GT triplets are zero-shot.
    seen = np.unique(np.concatenate([
        np.stack([r['gt_labels'][r['gt_relations'][:, 0]], r['gt_labels'][r['gt_relations'][:, 1]],
                  r['gt_relations'][:, 2]], axis=1) for r in records[::2]]), axis=0)
    groups = frequency_groups(oracle.train_statistics()[0])
    for compat in (False, True):
        settings = dict(topk=(5, 10, 20), seen_triplets=seen, predicate_groups=groups,
                        reference_compat=compat)
        stats = compute_image_stats(records, max_k=20)
        fast = oracle.flatten(summarize_image_stats(stats, num_predicates=oracle.NUM_PREDICATES, **settings))
        assert fast == oracle.loop_metrics(records, **settings)
        assert fast['R@20'] > 0 and fast['ngR@20'] > 0 and fast['zR@20'] > 0  # the data does produce hits
        assert fast['ngmR@20'] > 0 and fast['ngmR@20'] != fast['mR@20']  # ng-mR@K is compared too


def test_settings_from_dataset_meta():
    meta = {'predicates': ['on', 'has', 'near'], 'fg_rel_count': [5, 9, 1], 'triplets': [[0, 1, 0]]}
    settings, notes = evaluation_settings(meta, 'train', (1, 1))
    assert settings['num_predicates'] == 3 and notes == []
    assert settings['predicate_groups'] == {'head': [1], 'body': [0], 'tail': [2]}
    np.testing.assert_array_equal(settings['seen_triplets'], [[0, 1, 0]])
    explicit, _ = evaluation_settings(meta, None, None, predicate_groups={'rare': ['near', 0]})
    assert explicit['predicate_groups'] == {'rare': [0, 2]} and 'seen_triplets' not in explicit
    rest, _ = evaluation_settings(meta, None, None, predicate_groups={'head': ['has'], 'tail': 'rest'})
    assert rest['predicate_groups'] == {'head': [1], 'tail': [0, 2]}
    _, notes = evaluation_settings({'predicates': ['on']}, None, (4, 12))
    assert 'fg_rel_count' in notes[0]


def test_format_summary_lists_metrics_and_predicates():
    summary = evaluate([rank_boundary_record()], predicate_names=['on', 'has', 'near'],
                       predicate_groups={'head': [0], 'body': [1], 'tail': [2]})
    text = format_summary(summary)
    assert '| mR' in text and '| head_mR' in text and 'near' in text and '50.00' in text
    assert 'near' not in format_summary(summary, per_predicate=False)


@pytest.mark.parametrize('edit, message', [
    (lambda r: r.pop('pred_rel_scores'), 'missing field(s) pred_rel_scores'),
    (lambda r: r.update(gt_relations=np.array([[0, 5, 0]])), 'gt_relations holds 5'),
    (lambda r: r.update(pred_rel_pairs=np.array([[0, 7]] * 25)), 'pred_rel_pairs holds 7'),
    (lambda r: r.update(pred_rel_scores=score_rows([0, 1])), 'pred_rel_scores has 2 rows but pred_rel_pairs'),
    (lambda r: r['pred_rel_scores'].__setitem__((3, 1), np.nan), 'non-finite value in row 3'),
    (lambda r: r.update(pred_scores=np.float32([1, -1])), 'pred_scores must be non-negative'),
    (lambda r: r.update(pred_rel_labels=np.full(25, 3)), 'pred_rel_labels holds 3'),
    (lambda r: r.update(gt_bboxes=np.zeros((2, 5))), 'gt_bboxes must have shape (n, 4)'),
    (lambda r: r.update(gt_labels=np.array([0.5, 1.0])), 'gt_labels must hold integers'),
])
def test_bad_records_name_the_record_and_field(edit, message):
    record = two_object_record('img-7', predicate=0, hit_rank=0)
    edit(record)
    with pytest.raises((KeyError, ValueError)) as error:
        compute_image_stats([two_object_record('ok', predicate=0, hit_rank=0), record],
                            where='dump.pkl entry')
    assert message in str(error.value)
    assert "dump.pkl entry 1 (img_id='img-7')" in str(error.value)


def test_bad_summaries_raise():
    stats = compute_image_stats([two_object_record(1, 0, 0), two_object_record(1, 0, 0)])
    assert summarize_image_stats(stats)['images']['repeated_img_ids'] == 1
    with pytest.raises(ValueError, match='topk'):
        summarize_image_stats(stats[:1], topk=(20, 200))
    mixed = make_record(2, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_labels=[0],
                        rel_scores=np.full((1, 6), 0.1))
    with pytest.raises(ValueError, match='different predicate counts'):
        compute_image_stats([two_object_record(1, 0, 0), mixed])
    with pytest.raises(ValueError, match='none of the images has a GT relation'):
        summarize_image_stats(compute_image_stats([make_record(3, [box(0, 0)], [0], [])]), num_predicates=3)
    with pytest.raises(KeyError, match="'triplets'"):
        evaluation_settings({'predicates': ['on']}, 'train')
    with pytest.raises(ValueError, match='unknown predicate'):
        evaluation_settings({'predicates': ['on']}, None, predicate_groups={'head': ['under']})
    with pytest.raises(ValueError, match=r"predicate_groups\['head'\] holds indices outside 0..0"):
        evaluation_settings({'predicates': ['on']}, None, predicate_groups={'head': [3]})
