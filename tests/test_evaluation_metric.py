"""SGGMetric and SGGDumpResults through mmengine's Evaluator and Runner, and the progress bar."""
import io
import json
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS
from mmengine.dataset import BaseDataset
from mmengine.evaluator import DumpResults, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner

from speaq_mm.engine.hooks import SGGEvaluationProgressHook
from speaq_mm.evaluation import (
    SGGDumpResults,
    SGGMetric,
    add_scene_graph_outputs,
    load_prediction_dump,
)
from tests.evaluation_fixtures import (
    box,
    det_data_sample,
    distributed_metric_worker,
    make_record,
    rank_boundary_record,
    run_tool,
    two_object_record,
)

META = {'classes': ('c0', 'c1', 'c2', 'c3'), 'predicates': ('on', 'has', 'near'),
        'fg_rel_count': np.array([10, 30, 20]), 'triplets': np.array([[0, 1, 0], [2, 3, 1]])}


def sample_records():
    # Image 1: predicate 0 hit at rank 19, predicate 1 at rank 20 (both triplets seen in training).
    # Image 2: the unseen triplet (0, 1, near) hit at rank 0.
    return [rank_boundary_record(1), two_object_record(2, predicate=2, hit_rank=0)]


@DATASETS.register_module(force=True)
class SpeaQTestSceneGraphRecords(BaseDataset):
    """The hand-built records of ``sample_records`` plus an image without predictions, as a test dataset."""

    METAINFO = META

    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, lazy_init=False, **kwargs)

    def load_data_list(self):
        empty = make_record(3, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 0]], pairs=np.zeros((0, 2)),
                            rel_labels=[], rel_scores=np.zeros((0, 4)))
        return [dict(record=record) for record in sample_records() + [empty]]


@MODELS.register_module(force=True)
class SpeaQTestRecordReplay(BaseModel):
    """Returns each record's predictions as a model would (docs/structures.md)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the Runner expects parameters

    def forward(self, inputs=None, data_samples=None, mode='tensor'):
        raise NotImplementedError('only test_step is used')

    def test_step(self, data):
        fields = data['record']  # pseudo_collate: one list per record field
        return [det_data_sample({key: values[i] for key, values in fields.items()})
                for i in range(len(fields['img_id']))]


def run(metrics, records, size=None, meta=META):
    evaluator = Evaluator(metrics)
    evaluator.dataset_meta = meta
    evaluator.process([det_data_sample(r) for r in records])
    return evaluator.evaluate(size or len(records))


def test_metric_values_through_the_evaluator(tmp_path):
    json_file = tmp_path / 'out' / 'metrics.json'
    metrics = run([SGGMetric(group_sizes=(1, 1), json_file=str(json_file))], sample_records())
    assert metrics['sgg/R@20'] == 0.75 and metrics['sgg/R@50'] == 1.0
    assert metrics['sgg/mR@20'] == 2 / 3 and metrics['sgg/mR@50'] == 1.0
    assert metrics['sgg/zR@20'] == 1.0 and metrics['sgg/ngR@20'] == 0.75
    assert metrics['sgg/head_mR@20'] == 0.0 and metrics['sgg/tail_mR@20'] == 1.0  # head: has, tail: on
    assert metrics['sgg/F@50'] == 1.0
    saved = json.loads(json_file.read_text())
    assert saved['R@20'] == 0.75
    assert [row['name'] for row in saved['per_predicate']] == ['on', 'has', 'near']
    assert saved['per_predicate'][1]['group'] == 'head' and saved['per_predicate'][1]['train_count'] == 30


def test_runner_test_logs_the_tables_shows_progress_and_writes_the_outputs(tmp_path, capsys):
    runner = Runner(
        model=dict(type='SpeaQTestRecordReplay'), work_dir=str(tmp_path / 'work'), default_scope='mmdet',
        test_dataloader=dict(dataset=dict(type='SpeaQTestSceneGraphRecords'), batch_size=2, num_workers=0,
                             sampler=dict(type='DefaultSampler', shuffle=False),
                             collate_fn=dict(type='pseudo_collate')),
        test_cfg=dict(type='TestLoop'), test_evaluator=dict(type='SGGMetric', group_sizes=(1, 1)),
        custom_hooks=[dict(type='SGGEvaluationProgressHook')])
    # What tools/test.py --out does.
    add_scene_graph_outputs(runner.test_evaluator, dump_file=str(tmp_path / 'test.pkl'),
                            json_file=str(tmp_path / 'test_metrics.json'), meta_file=str(tmp_path / 'test_meta.json'))
    metrics = runner.test()
    assert metrics['sgg/R@20'] == (0.5 + 1.0 + 0.0) / 3 and metrics['sgg/zR@20'] == 1.0
    printed = capsys.readouterr().out
    assert '3/3' in printed  # the progress bar
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert '| metric (%) |' in log and '| near' in log and 'without prediction 1' in log
    assert len(load_prediction_dump(str(tmp_path / 'test.pkl'))) == 3
    assert json.loads((tmp_path / 'test_metrics.json').read_text())['images']['without_prediction'] == 1
    assert json.loads((tmp_path / 'test_meta.json').read_text())['triplets'] == [[0, 1, 0], [2, 3, 1]]


def test_padded_samples_are_dropped_and_results_stay_small():
    metric = SGGMetric()
    records = sample_records()
    padded = records + [records[0]]  # DefaultSampler pads the last batch with samples from the start
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = META
    evaluator.process([det_data_sample(r) for r in padded])
    assert len(metric.results) == 3
    assert sorted(metric.results[0]) == ['gt_triplets', 'img_id', 'max_k', 'num_pred_rels', 'num_predicates',
                                         'rank_graph', 'rank_no_graph']
    assert evaluator.evaluate(2) == run([SGGMetric()], records)


def test_results_are_collected_once_across_two_ranks(tmp_path):
    records = sample_records() + [two_object_record(3, predicate=1, hit_rank=3),
                                  two_object_record(4, predicate=0, hit_rank=None),
                                  rank_boundary_record(5)]  # 5 images: the sampler pads rank 1 with image 1
    out_file = tmp_path / 'metrics.json'
    # fork: the ranks inherit the imported modules instead of importing mmdet again
    torch.multiprocessing.start_processes(distributed_metric_worker, nprocs=2, start_method='fork',
                                          args=(2, str(tmp_path / 'init'), str(out_file), records, META))
    assert json.loads(out_file.read_text()) == run([SGGMetric(group_sizes=(1, 1))], records)


def test_reference_compat_skips_images_without_predictions():
    empty = make_record(3, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 0]], pairs=np.zeros((0, 2)),
                        rel_labels=[], rel_scores=np.zeros((0, 4)))
    records = sample_records() + [empty]
    assert run([SGGMetric()], records)['sgg/R@50'] == 2 / 3
    assert run([SGGMetric(reference_compat=True)], records)['sgg/R@50'] == 1.0


def test_zero_shot_file_and_missing_metainfo(tmp_path):
    np.save(tmp_path / 'zs.npy', np.array([[0, 1, 2]]))
    metrics = run([SGGMetric(zeroshot_triplets=str(tmp_path / 'zs.npy'))], sample_records(),
                  meta={'predicates': META['predicates']})
    assert metrics['sgg/zR@20'] == 1.0 and 'sgg/head_mR@20' not in metrics
    with pytest.raises(KeyError, match="SGGMetric: zeroshot_triplets='train' needs .*'triplets'"):
        SGGMetric().dataset_meta = {'predicates': META['predicates']}
    assert 'sgg/zR@20' not in run([SGGMetric(zeroshot_triplets=None)], sample_records())


def test_bad_options_and_inputs_raise():
    with pytest.raises(ValueError, match='topk'):
        SGGMetric(topk=(0, 20))
    with pytest.raises(ValueError, match='iou_thr'):
        SGGMetric(iou_thr=1.5)
    with pytest.raises(ValueError, match='group_sizes'):
        SGGMetric(group_sizes=(4,))
    with pytest.raises(FileNotFoundError, match='missing.npy'):
        SGGMetric(zeroshot_triplets='missing.npy')
    with pytest.raises(ValueError, match='different predicate counts'):
        run([SGGMetric()], sample_records(),
            meta=dict(META, predicates=('on', 'has'), fg_rel_count=np.array([1, 2])))
    with pytest.raises(ValueError, match='unknown predicate'):
        SGGMetric(predicate_groups={'head': ['under']}).dataset_meta = META


def test_registered_in_mmdet_registries():
    assert isinstance(METRICS.build(dict(type='SGGMetric', topk=(50,))), SGGMetric)
    assert isinstance(METRICS.build(dict(type='SGGDumpResults', out_file_path='x.pkl')),
                      SGGDumpResults)
    assert isinstance(HOOKS.build(dict(type='SGGEvaluationProgressHook')), SGGEvaluationProgressHook)


def test_dump_is_readable_by_the_offline_tool_with_the_same_metrics(tmp_path):
    metric = SGGMetric(group_sizes=(1, 1))
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = META
    dump, meta_file = tmp_path / 'test.pkl', tmp_path / 'test_meta.json'
    json_file = tmp_path / 'test_metrics.json'
    assert add_scene_graph_outputs(evaluator, dump_file=str(dump), json_file=str(json_file),
                                   meta_file=str(meta_file)) == 1
    records = sample_records()
    evaluator.process([det_data_sample(r) for r in records])
    online = evaluator.evaluate(len(records))
    for loaded, record in zip(load_prediction_dump(str(dump)), records):
        assert sorted(loaded) == sorted([*record, 'image_size'])  # the dump also carries the image size
        assert loaded['image_size'].tolist() == [200, 200]
        assert all(isinstance(loaded[key], np.ndarray) for key in record if key != 'img_id')
        np.testing.assert_array_equal(loaded['pred_rel_scores'], record['pred_rel_scores'])
    assert json.loads(meta_file.read_text())['predicates'] == ['on', 'has', 'near']
    offline = run_tool([str(dump), '--dataset-meta', str(meta_file), '--group-sizes', '1', '1'], tmp_path)
    assert {f'sgg/{key}': value for key, value in offline.items() if isinstance(value, float)} == online
    assert json.loads(json_file.read_text())['R@20'] == online['sgg/R@20']


def test_raw_mmengine_dump_is_readable_too(tmp_path):
    raw = tmp_path / 'raw.pkl'
    evaluator = Evaluator([])  # no SGGMetric: the helper falls back to mmengine's DumpResults
    assert add_scene_graph_outputs(evaluator, dump_file=str(raw)) == 0
    assert type(evaluator.metrics[0]) is DumpResults
    evaluator.process([det_data_sample(r) for r in sample_records()])
    evaluator.evaluate(2)
    assert isinstance(pickle.loads(raw.read_bytes())[0]['pred_relations']['scores'], torch.Tensor)
    summary = run_tool([str(raw)], tmp_path)
    assert summary['R@20'] == 0.75 and 'zR@20' not in summary


def test_entity_ap_of_exact_and_missed_detections():
    exact = two_object_record(1, predicate=0, hit_rank=0)
    metrics = run([SGGMetric(entity_ap=True)], [exact])
    assert metrics['sgg/bbox_mAP'] == pytest.approx(1.0)
    shifted = two_object_record(2, predicate=0, hit_rank=0)
    shifted['pred_bboxes'] = shifted['pred_bboxes'] + 100  # no detection overlaps its GT box
    assert run([SGGMetric(entity_ap=True)], [shifted])['sgg/bbox_mAP'] == 0.0


def test_progress_bar_counts_test_images():
    stream = io.StringIO()
    hook = SGGEvaluationProgressHook(file=stream)
    runner = SimpleNamespace(test_dataloader=SimpleNamespace(dataset=list(range(5))))
    hook.before_test_epoch(runner)
    for batch in range(3):  # 3 batches of 2 overshoot 5 images, as a padded sampler does
        hook.after_test_iter(runner, batch, outputs=[None, None])
    hook.after_test_epoch(runner)
    text = stream.getvalue()
    assert '0/5' in text and '4/5' in text and '5/5' in text and '6/5' not in text
    assert text.endswith('\n')
    hook.before_val_epoch(runner)  # validation draws nothing unless on_val
    assert stream.getvalue() == text
