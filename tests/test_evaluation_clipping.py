"""Ground-truth boxes are clipped to the image before matching, as the reference protocol does.

One 100 x 100 image (height x width), classes 0-2, predicates 0-1. GT box 1 reaches 30 px past the right edge
([80, 10, 130, 50] -> [80, 10, 100, 50] inside the image) and GT box 2 lies wholly outside it (empty once
clipped: dropped with its relation). The model predicts the in-image boxes exactly and the triplet
(0, 1, predicate 0):

* clipped (the reference): the predicted box 1 has IoU 1 with the clipped GT box, so the one remaining GT
  relation is hit: R@K = 1/1; mR@K = (1 + 0) / 2, as the reference averages over every predicate and predicate
  1 lost its only GT relation;
* unclipped: IoU = (20 x 40) / (50 x 40) = 0.4 < 0.5 misses, and the relation to the outside box stays: R@K = 0/2.
"""
import numpy as np
from mmengine.evaluator import Evaluator

from speaq_mm.evaluation import SGGMetric, add_scene_graph_outputs
from speaq_mm.evaluation.records import check_record, record_from_data_sample
from speaq_mm.evaluation.sgg_core import compute_image_stats
from speaq_mm.evaluation.sgg_summary import summarize_image_stats
from tests.evaluation_fixtures import det_data_sample, make_record, run_tool

META = {'classes': ('c0', 'c1', 'c2'), 'predicates': ('on', 'has')}
GT_BOXES = [[10, 10, 40, 40], [80, 10, 130, 50], [110, 10, 130, 50]]
PRED_BOXES = [[10, 10, 40, 40], [80, 10, 100, 50]]


def crossing_record():
    return make_record(1, GT_BOXES, [0, 1, 2], [[0, 1, 0], [0, 2, 1]], pred_boxes=PRED_BOXES, pred_labels=[0, 1],
                       pairs=[[0, 1]], rel_labels=[0], rel_scores=np.array([[0.9, 0.05, 0.05]], np.float32))


def test_the_record_is_clipped_and_the_empty_box_dropped_with_its_relation():
    checked = check_record(dict(crossing_record(), image_size=(100, 100)), 'record')
    assert checked['gt_bboxes'].tolist() == [[10, 10, 40, 40], [80, 10, 100, 50]]
    assert checked['gt_labels'].tolist() == [0, 1]
    assert checked['gt_relations'].tolist() == [[0, 1, 0]]
    again = check_record(checked, 'record')  # idempotent: dumps are checked again when evaluated
    assert again['gt_relations'].tolist() == [[0, 1, 0]] and len(again['gt_bboxes']) == 2


def test_the_metric_scores_clipped_ground_truth():
    evaluator = Evaluator([SGGMetric(group_sizes=None, zeroshot_triplets=None)])
    evaluator.dataset_meta = META
    evaluator.process([det_data_sample(crossing_record(), ori_shape=(100, 100))])
    metrics = evaluator.evaluate(1)
    assert metrics['sgg/R@20'] == metrics['sgg/R@100'] == 1.0
    assert metrics['sgg/mR@20'] == 0.5


def test_without_the_image_size_the_ground_truth_stays_raw():
    """What the reference protocol avoids: the box past the border misses, the outside box still counts."""
    summary = summarize_image_stats(compute_image_stats([crossing_record()], max_k=100), topk=(20, 100))
    assert summary['R@20'] == summary['R@100'] == 0.0


def test_the_dump_carries_the_image_size_and_the_offline_tool_clips_the_same(tmp_path):
    sample = det_data_sample(crossing_record(), ori_shape=(100, 100))
    record = record_from_data_sample(sample.to_dict())
    assert record['image_size'].tolist() == [100.0, 100.0]
    evaluator = Evaluator([SGGMetric(group_sizes=None, zeroshot_triplets=None)])
    evaluator.dataset_meta = META
    dump = tmp_path / 'preds.pkl'
    add_scene_graph_outputs(evaluator, dump_file=str(dump), meta_file=str(tmp_path / 'meta.json'))
    evaluator.process([sample])
    evaluator.evaluate(1)
    summary = run_tool([str(dump), '--dataset-meta', str(tmp_path / 'meta.json'), '--topk', '20', '100'], tmp_path)
    assert summary['R@20'] == summary['R@100'] == 1.0
