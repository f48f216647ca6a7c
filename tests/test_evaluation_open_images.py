"""The Open Images protocol (``oi_core``): hand-built images whose metrics are worked out here, the reference's
conventions one by one (pixel-inclusive IoU, > vs >= thresholds, GT clamping, tie order), and agreement with
the plain per-image loop of ``speaq_mm.testing.oi_evaluation_oracle`` on a few hundred random images."""
import numpy as np
import pytest
import torch

from speaq_mm.evaluation.oi_core import (
    box_iou_plus_one,
    compute_oi_image_stats,
    format_oi_summary,
    summarize_oi_stats,
    top_predicates,
)
from speaq_mm.testing.oi_evaluation_oracle import flatten_oi, oi_loop_metrics, synthetic_oi_records

NUM_PREDICATES = 3


def rows(*scores):
    """Score rows (C predicates + no-relation last) from the C predicate scores of each row."""
    table = np.zeros((len(scores), NUM_PREDICATES + 1), dtype=np.float32)
    table[:, :NUM_PREDICATES] = scores
    table[:, -1] = 0.9  # never ranked
    return table


def record(img_id, gt_boxes, gt_labels, gt_relations, pairs, rel_scores, pred_boxes=None, pred_labels=None,
           image_size=(1000, 1000)):
    """Predicted entities default to the GT boxes with their labels and score 1."""
    pred_boxes = gt_boxes if pred_boxes is None else pred_boxes
    pred_labels = gt_labels if pred_labels is None else pred_labels
    rel_scores = np.asarray(rel_scores, dtype=np.float32).reshape(-1, NUM_PREDICATES + 1)
    return {'img_id': img_id, 'image_size': image_size,
            'gt_bboxes': np.asarray(gt_boxes, np.float32).reshape(-1, 4), 'gt_labels': np.asarray(gt_labels),
            'gt_relations': np.asarray(gt_relations).reshape(-1, 3),
            'pred_bboxes': np.asarray(pred_boxes, np.float32).reshape(-1, 4), 'pred_labels': np.asarray(pred_labels),
            'pred_scores': np.ones(len(pred_labels), np.float32),
            'pred_rel_pairs': np.asarray(pairs).reshape(-1, 2), 'pred_rel_scores': rel_scores,
            'pred_rel_labels': rel_scores[:, :NUM_PREDICATES].argmax(axis=1) if len(rel_scores) else np.zeros(0)}


def approx(value):
    """The reference divides by counts + 1e-12, so a recall of 1 is 1 / (1 + 1e-12)."""
    return pytest.approx(value, rel=0, abs=1e-9)


def evaluate(records, topk=(20, 50, 100)):
    stats = compute_oi_image_stats(records, max_k=max(topk))
    return summarize_oi_stats(stats, topk=topk, num_predicates=NUM_PREDICATES)


# Four boxes: two (class 0 -> class 1) relation pairs, far apart.
BOXES = [[0, 0, 9, 9], [20, 0, 29, 9], [0, 40, 9, 49], [20, 40, 29, 49]]
LABELS = [0, 1, 0, 1]


def duplicate_record():
    """GT A = (0, 1, on) and B = (2, 3, on); cells 0.9 on A, 0.8 on A again (the duplicate), 0.7 on B; each
    pair's second predicate (1) gives three more cells (0.05, 0.04, 0.03), none of which has a GT."""
    return record(1, BOXES, LABELS, [[0, 1, 0], [2, 3, 0]], pairs=[[0, 1], [0, 1], [2, 3]],
                  rel_scores=rows([0.9, 0.05, 0], [0.8, 0.04, 0], [0.7, 0.03, 0]))


def test_a_duplicate_detection_is_a_false_positive_in_ap_but_recall_counts_the_gt_once():
    summary = evaluate([duplicate_record()])
    assert summary['R@20'] == summary['imgR@20'] == approx(1.0)
    # Claims in score order: TP (A), FP (A again), TP (B): recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
    # Envelope-interpolated AP = 1/2 x 1 + 1/2 x 2/3.
    expected = 0.5 * 1.0 + 0.5 * (2 / 3)
    on = summary['per_predicate'][0]
    assert on['AP_rel'] == approx(expected)
    assert on['AP_phr'] == approx(expected)
    assert on['test_count'] == 2 and on['weight'] == 1.0
    assert summary['wmAP_rel'] == approx(expected)


def test_a_predicate_absent_from_the_split_has_ap_0_weight_0_and_still_divides_the_mean():
    summary = evaluate([duplicate_record()])
    for predicate in (1, 2):  # 1 has three false positives, 2 no cell at all
        row = summary['per_predicate'][predicate]
        assert (row['test_count'], row['weight'], row['AP_rel'], row['AP_phr']) == (0, 0.0, 0.0, 0.0)
    ap = 0.5 + 0.5 * (2 / 3)
    assert summary['mAP_rel'] == approx(ap / 3)
    assert summary['wmAP_rel'] == approx(ap)
    assert summary['score_wtd'] == approx(0.4 * ap + 0.2 * 1.0 + 0.4 * ap)
    assert summary['score_unwtd'] == approx(0.4 * ap / 3 + 0.2 * 1.0 + 0.4 * ap / 3)


def test_a_phrase_hit_that_is_not_a_relation_hit():
    # The GT object contains the subject; the predicted subject is elsewhere inside the object, so the union
    # boxes are identical (phrase IoU 1) while the subject IoU is 0.
    gt_boxes = [[0, 0, 9, 9], [0, 0, 99, 99]]
    predicted = [[50, 50, 59, 59], [0, 0, 99, 99]]
    summary = evaluate([record(1, gt_boxes, [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_scores=rows([0.9, 0, 0]),
                               pred_boxes=predicted)])
    assert summary['R@100'] == 0.0
    assert summary['per_predicate'][0]['AP_rel'] == 0.0
    assert summary['per_predicate'][0]['AP_phr'] == approx(1.0)


def test_iou_adds_one_pixel_recall_needs_iou_at_least_and_ap_more_than_the_threshold():
    # Pixel-inclusive: [0, 0, 9, 9] has area 100, [0, 0, 9, 4] area 50, both inside: IoU exactly 0.5
    # (continuous coordinates would give 36 / 81).
    assert box_iou_plus_one(np.float32([[0, 0, 9, 9]]), np.float32([[0, 0, 9, 4]]))[0] == 0.5
    summary = evaluate([record(1, [[0, 0, 9, 9], [20, 0, 29, 9]], [0, 1], [[0, 1, 0]], pairs=[[0, 1]],
                               rel_scores=rows([0.9, 0, 0]), pred_boxes=[[0, 0, 9, 4], [20, 0, 29, 9]])])
    assert summary['R@20'] == approx(1.0)  # recall: IoU >= 0.5
    assert summary['per_predicate'][0]['AP_rel'] == 0.0  # AP: IoU > 0.5


def test_ground_truth_is_clamped_to_the_last_pixel_and_kept():
    # A GT box twice as wide as the 640-pixel image becomes [0, 0, 639, 99]; the predicted box equals it.
    gt_boxes = [[0, 0, 1279, 99], [0, 200, 9, 209], [5, 300, 5, 300]]
    predicted = [[0, 0, 639, 99], [0, 200, 9, 209]]
    clipped = record(1, gt_boxes, [0, 1, 1], [[0, 1, 0], [0, 2, 0]], pairs=[[0, 1]], rel_scores=rows([0.9, 0, 0]),
                     pred_boxes=predicted, pred_labels=[0, 1], image_size=(480, 640))
    summary = evaluate([clipped])
    # Unclamped, the IoU would be 640 / 1280 = 0.5, not > 0.5; clamped it is 1. The one-pixel GT box
    # [5, 300, 5, 300] is kept (not dropped as empty), so its relation counts: recall 1 of 2.
    assert summary['per_predicate'][0]['AP_rel'] == approx(0.5)
    assert summary['R@20'] == approx(0.5) and summary['per_predicate'][0]['test_count'] == 2


def test_an_image_without_predictions_counts_its_gt_as_missed():
    empty = record(2, BOXES, LABELS, [[0, 1, 0], [2, 3, 0]], pairs=np.zeros((0, 2), int),
                   rel_scores=np.zeros((0, NUM_PREDICATES + 1)), pred_boxes=np.zeros((0, 4)), pred_labels=[])
    without_gt = record(3, BOXES, LABELS, np.zeros((0, 3), int), pairs=[[0, 1]], rel_scores=rows([0.9, 0, 0]))
    summary = evaluate([duplicate_record(), empty, without_gt])
    assert summary['R@20'] == approx(2 / 4)  # micro: 2 of the split's 4 GT relations
    assert summary['imgR@20'] == approx((1.0 + 0.0) / 2)
    # The two missed GT relations halve the recall of every claim: AP = 1/4 x 1 + 1/4 x 2/3.
    assert summary['per_predicate'][0]['AP_rel'] == approx(0.25 + 0.25 * (2 / 3))
    # The image without GT relations is left out, its cell counting as no false positive.
    assert summary['images'] == {'total': 3, 'evaluated': 2, 'without_gt_relation': 1, 'without_prediction': 1,
                                 'repeated_img_ids': 0}


def test_tied_claims_of_two_images_keep_image_order_as_the_reference_sort_does():
    # Both images hold one (0, 1, on) relation; one image's cell (0.6) hits, the other's (0.6) misses (wrong
    # object class). np.argsort on two tied values keeps their order. Miss first: recall 0, 1/2 at precision
    # 0, 1/2 -> AP = 1/2 x 1/2. Hit first: recall 1/2, 1/2 at precision 1, 1/2 -> AP = 1/2 x 1.
    miss = record(0, BOXES[:2], [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_scores=rows([0.6, 0, 0]),
                  pred_labels=[0, 2])
    hit = record(1, BOXES[:2], [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_scores=rows([0.6, 0, 0]))
    assert evaluate([miss, hit])['per_predicate'][0]['AP_rel'] == approx(0.25)
    assert evaluate([hit, miss])['per_predicate'][0]['AP_rel'] == approx(0.5)


def tied_cells_record(num_pairs=20):
    """``num_pairs`` separate GT relations (class 0 -> class 1, predicate 0), each predicted by its own pair
    with scores (0.5, 0.25): the 0.5 cells all tie."""
    boxes, relations = [], []
    for i in range(num_pairs):
        boxes += [[100 * i, 0, 100 * i + 9, 9], [100 * i + 20, 0, 100 * i + 29, 9]]
        relations.append([2 * i, 2 * i + 1, 0])
    return record(1, boxes, [0, 1] * num_pairs, relations, pairs=[[2 * i, 2 * i + 1] for i in range(num_pairs)],
                  rel_scores=rows(*[[0.5, 0.25, 0]] * num_pairs), image_size=(100, 100 * num_pairs))


def test_tied_cells_are_ranked_by_the_reference_sort_of_the_image_score_array():
    stats = compute_oi_image_stats([tied_cells_record()], max_k=10)[0]
    # The reference keeps np.argsort(-cells)[:10] of the image's (20 pairs x 2 predicates) array; with 40
    # values numpy's default sort is not stable, so this is not simply the first ten pairs.
    cells = np.tile(np.float32([0.5, 0.25]), 20)
    expected_rows = np.argsort(-cells)[:10] // 2
    hit = np.flatnonzero(stats['rank'] < 10)
    assert sorted(hit) == sorted(expected_rows.tolist())
    np.testing.assert_array_equal(stats['rank'][expected_rows], np.arange(10))


def test_tied_predicates_are_picked_as_the_reference_argsort_of_a_torch_tensor_picks_them():
    scores = np.float32([[0.3, 0.3, 0.3, 0.1] * 10, np.linspace(1, 0, 40), [0.1] * 10 + [0.5] * 30])
    labels, values = top_predicates(scores, 2)
    # The reference's expression: np.argsort on the negated torch score tensor (numpy sorts it as an array).
    reference = np.asarray(np.argsort(-torch.from_numpy(scores), axis=1))[:, :2]
    assert reference[2].tolist() != [10, 11]  # 40 values: numpy's default sort is not stable here
    np.testing.assert_array_equal(labels, reference)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, reference, axis=1))


def test_cells_at_most_1e5_are_dropped():
    low = record(1, BOXES[:2], [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_scores=rows([1e-5, 0, 0]))
    assert evaluate([low])['R@100'] == 0.0
    kept = record(1, BOXES[:2], [0, 1], [[0, 1, 0]], pairs=[[0, 1]], rel_scores=rows([2e-5, 0, 0]))
    assert evaluate([kept])['R@100'] == approx(1.0)


@pytest.mark.parametrize('ties', [True, False])
def test_vectorised_core_agrees_with_the_per_image_loop(ties):
    records = synthetic_oi_records(300, num_triplets=60, seed=3, ties=ties)
    stats = [s for chunk in range(0, 300, 64)
             for s in compute_oi_image_stats(records[chunk:chunk + 64], max_k=100, first_index=chunk)]
    summary = summarize_oi_stats(stats, num_predicates=30)
    fast, slow = flatten_oi(summary), oi_loop_metrics(records)
    assert set(fast) == set(slow)
    for key in fast:
        assert fast[key] == pytest.approx(slow[key], rel=0, abs=1e-12), key
    # Not a comparison of zeros: the random images hold hits, true positives and absent predicates.
    assert summary['R@100'] > 0.1 and summary['wmAP_rel'] > 0.01 and summary['wmAP_phr'] > summary['wmAP_rel']
    assert sum(row['test_count'] == 0 for row in summary['per_predicate']) >= 3


def test_summary_table_and_errors():
    summary = evaluate([duplicate_record()])
    text = format_oi_summary(summary, (20, 50, 100))
    assert 'wmAP_rel' in text and 'score_wtd' in text and 'AP_phr %' in text
    with pytest.raises(ValueError, match='none of the images'):
        summarize_oi_stats(compute_oi_image_stats([record(1, BOXES, LABELS, np.zeros((0, 3), int), pairs=[[0, 1]],
                                                          rel_scores=rows([0.9, 0, 0]))]), num_predicates=3)
    bad = duplicate_record()
    bad['pred_rel_scores'][0, 1] = np.nan
    with pytest.raises(ValueError, match=r'record 0 \(img_id=1\): field pred_rel_scores'):
        compute_oi_image_stats([bad])


def test_metric_through_the_evaluator_equals_the_core_and_the_offline_tool(tmp_path):
    from mmengine.evaluator import Evaluator

    from speaq_mm.evaluation import SGGMetric, add_scene_graph_outputs
    from tests.evaluation_fixtures import det_data_sample, run_tool

    # Image 3's second GT relation uses a zero-width box, which the OI protocol keeps (the VG one drops it).
    zero_width = record(3, [[0, 0, 9, 9], [20, 0, 29, 9], [5, 50, 5, 50]], [0, 1, 1], [[0, 1, 0], [0, 2, 0]],
                        pairs=[[0, 1]], rel_scores=rows([0.9, 0, 0]), pred_boxes=BOXES[:2], pred_labels=[0, 1])
    records = [duplicate_record(), tied_cells_record(2), zero_width]
    for item in records:
        item['image_size'] = (200, 200)  # det_data_sample's ori_shape
    evaluator = Evaluator([SGGMetric(protocol='open_images')])
    evaluator.dataset_meta = {'predicates': ['on', 'has', 'near']}  # no triplets needed for this protocol
    dump, meta = tmp_path / 'test.pkl', tmp_path / 'test_meta.json'
    add_scene_graph_outputs(evaluator, dump_file=str(dump), meta_file=str(meta))
    evaluator.process([det_data_sample(r) for r in records])
    online = evaluator.evaluate(len(records))
    expected = evaluate(records)
    assert online == {f'sgg/{key}': value for key, value in expected.items() if isinstance(value, float)}
    assert online['sgg/score_wtd'] > 0.5 and expected['images']['evaluated'] == 3
    assert expected['per_predicate'][0]['test_count'] == 2 + 2 + 2
    offline = run_tool([str(dump), '--dataset-meta', str(meta), '--protocol', 'open_images'], tmp_path)
    assert {f'sgg/{key}': value for key, value in offline.items() if isinstance(value, float)} == online
    assert offline['per_predicate'][0]['name'] == 'on'
    with pytest.raises(ValueError, match='belong to'):
        SGGMetric(protocol='open_images', reference_compat=True)
    with pytest.raises(ValueError, match='protocol must be one of'):
        SGGMetric(protocol='coco')
