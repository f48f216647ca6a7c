"""Hand-built scene graph records for the evaluation tests: every metric's value follows from the layout."""
import importlib.util
import json
import os.path as osp

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_PREDICATES = 3
TOOL = osp.join(REPO_ROOT, 'tools/analysis/eval_scene_graphs.py')


def box(x, y, size=10.0):
    """A square xyxy box."""
    return [x, y, x + size, y + size]


def score_rows(labels, num_predicates=NUM_PREDICATES, no_relation=0.05):
    """Score rows whose largest real predicate is ``labels[i]`` (0.6), the others 0.1, no-relation last."""
    rows = np.full((len(labels), num_predicates + 1), 0.1, dtype=np.float32)
    rows[np.arange(len(labels)), labels] = 0.6
    rows[:, -1] = no_relation
    return rows


def make_record(img_id, gt_boxes, gt_labels, gt_relations, pred_boxes=None, pred_labels=None, pairs=(),
                rel_labels=(), rel_scores=None, pred_scores=None):
    """A record in the dump format; predictions default to the GT entities with score 1."""
    pred_boxes = gt_boxes if pred_boxes is None else pred_boxes
    pred_labels = gt_labels if pred_labels is None else pred_labels
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rel_labels = np.asarray(rel_labels, dtype=np.int64)
    return {
        'img_id': img_id,
        'gt_bboxes': np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4),
        'gt_labels': np.asarray(gt_labels, dtype=np.int64),
        'gt_relations': np.asarray(gt_relations, dtype=np.int64).reshape(-1, 3),
        'pred_bboxes': np.asarray(pred_boxes, dtype=np.float32).reshape(-1, 4),
        'pred_labels': np.asarray(pred_labels, dtype=np.int64),
        'pred_scores': (np.ones(len(pred_labels), dtype=np.float32) if pred_scores is None
                        else np.asarray(pred_scores, dtype=np.float32)),
        'pred_rel_pairs': pairs,
        'pred_rel_scores': (score_rows(rel_labels) if rel_scores is None
                            else np.asarray(rel_scores, dtype=np.float32)),
        'pred_rel_labels': rel_labels,
    }


def two_object_record(img_id, predicate, hit_rank, num_triplets=25):
    """GT: object 0 (class 0) --predicate--> object 1 (class 1). ``num_triplets`` predictions on the same two
    boxes, all with a wrong predicate except the one at 0-based ``hit_rank`` (None: no hit)."""
    wrong = (predicate + 1) % NUM_PREDICATES
    labels = [predicate if i == hit_rank else wrong for i in range(num_triplets)]
    return make_record(img_id, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, predicate]],
                       pairs=[[0, 1]] * num_triplets, rel_labels=labels)


def rank_boundary_record(img_id=1):
    """Two GT relations: predicate 0 hit at 0-based rank 19 (the 20th triplet), predicate 1 at rank 20.

    Triplets other than those two pair the GT boxes the wrong way round, so they hit nothing.
    """
    labels = [0] * 25
    pairs = [[1, 0]] * 25
    pairs[19], labels[19] = [0, 1], 0
    pairs[20], labels[20] = [2, 3], 1
    return make_record(img_id, [box(0, 0), box(50, 50), box(100, 0), box(150, 50)], [0, 1, 2, 3],
                       [[0, 1, 0], [2, 3, 1]], pairs=pairs, rel_labels=labels)


def det_data_sample(record, ori_shape=(200, 200)):
    """A DetDataSample with the fields of docs/structures.md, as the model and the test pipeline produce."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    def tensor(array):
        return torch.from_numpy(np.ascontiguousarray(array))

    sample = DetDataSample(metainfo=dict(img_id=record['img_id'], img_path=f'{record["img_id"]}.jpg',
                                         ori_shape=ori_shape, img_shape=ori_shape, scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=tensor(record['gt_bboxes']), labels=tensor(record['gt_labels']))
    sample.gt_relations = InstanceData(pairs=tensor(record['gt_relations'][:, :2]),
                                       labels=tensor(record['gt_relations'][:, 2]))
    sample.pred_instances = InstanceData(bboxes=tensor(record['pred_bboxes']),
                                         labels=tensor(record['pred_labels']),
                                         scores=tensor(record['pred_scores']))
    sample.pred_relations = InstanceData(pairs=tensor(record['pred_rel_pairs']),
                                         scores=tensor(record['pred_rel_scores']),
                                         labels=tensor(record['pred_rel_labels']))
    return sample


def data_sample_dict(record, tensor=True):
    """The record as ``DetDataSample.to_dict()`` lays it out (``docs/structures.md``), with torch tensors."""
    import torch

    def convert(array):
        return torch.from_numpy(np.ascontiguousarray(array)) if tensor else array

    relations = record['gt_relations']
    return {
        'img_id': record['img_id'], 'img_path': f'{record["img_id"]}.jpg', 'ori_shape': (200, 200),
        'gt_instances': {'bboxes': convert(record['gt_bboxes']), 'labels': convert(record['gt_labels'])},
        'gt_relations': {'pairs': convert(relations[:, :2]), 'labels': convert(relations[:, 2])},
        'pred_instances': {'bboxes': convert(record['pred_bboxes']), 'labels': convert(record['pred_labels']),
                           'scores': convert(record['pred_scores'])},
        'pred_relations': {'pairs': convert(record['pred_rel_pairs']),
                           'scores': convert(record['pred_rel_scores']),
                           'labels': convert(record['pred_rel_labels'])},
    }


def load_benchmark():
    """Import the command line tools/benchmarks/bench_eval.py."""
    return _load_script('bench_eval', osp.join(REPO_ROOT, 'tools/benchmarks/bench_eval.py'))


def _load_script(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(argv, tmp_path):
    """Run eval_scene_graphs.py's main() in this process with ``--out-json``; return the JSON it wrote."""
    out_json = tmp_path / 'tool_metrics.json'
    summary = _load_script('eval_scene_graphs', TOOL).main(argv + ['--out-json', str(out_json)])
    saved = json.loads(out_json.read_text())
    assert saved == json.loads(json.dumps(summary))
    return saved


def distributed_metric_worker(rank, world_size, init_file, out_file, records, meta):
    """One rank of a gloo job: process this rank's share of ``records`` as ``DefaultSampler(round_up=True)``
    hands it out (padded with the first images), evaluate, and let rank 0 write the metrics as JSON."""
    import torch.distributed as dist
    from mmengine.evaluator import Evaluator

    from speaq_mm.evaluation import SGGMetric

    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        padded = list(range(len(records)))
        padded += padded[:(-len(padded)) % world_size]
        evaluator = Evaluator(SGGMetric(group_sizes=(1, 1)))
        evaluator.dataset_meta = meta
        for index in padded[rank::world_size]:
            evaluator.process([data_sample_dict(records[index])])
        metrics = evaluator.evaluate(len(records))
        if rank == 0:
            with open(out_file, 'w') as file:
                json.dump(metrics, file)
    finally:
        dist.destroy_process_group()
