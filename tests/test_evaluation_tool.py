"""tools/analysis/eval_scene_graphs.py and tools/benchmarks/bench_eval.py on small hand-built dumps."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.evaluation_fixtures import TOOL, box, load_benchmark, make_record, run_tool, two_object_record


def write_dump(tmp_path):
    # Image 1: (0, 1, on) hit at rank 0; image 2: (0, 1, near) hit at rank 30 only; image 3: no prediction.
    records = [two_object_record(1, predicate=0, hit_rank=0), two_object_record(2, predicate=2, hit_rank=30,
                                                                                num_triplets=40),
               make_record(3, [box(0, 0), box(50, 50)], [0, 1], [[0, 1, 1]], pairs=np.zeros((0, 2)),
                           rel_labels=[], rel_scores=np.zeros((0, 4)))]
    path = tmp_path / 'dump.pkl'
    path.write_bytes(pickle.dumps(records))
    meta = tmp_path / 'meta.json'
    meta.write_text(json.dumps({'predicates': ['on', 'has', 'near'], 'fg_rel_count': [3, 2, 1],
                                'triplets': [[0, 1, 0], [0, 1, 1]]}))
    return str(path), str(meta)


def test_tool_writes_every_metric_family_as_fractions(tmp_path):
    dump, meta = write_dump(tmp_path)
    saved = run_tool([dump, '--dataset-meta', meta, '--group-sizes', '1', '1'], tmp_path)
    for k in (20, 50, 100):
        for family in ('R', 'mR', 'ngR', 'zR', 'F', 'head_mR', 'body_mR', 'tail_mR'):
            assert 0 <= saved[f'{family}@{k}'] <= 1
    assert saved['R@20'] == 1 / 3 and saved['R@50'] == 2 / 3  # image 3 has no prediction: recall 0
    assert saved['zR@20'] == 0.0 and saved['zR@50'] == 1.0  # only (0, 1, near) is unseen in training
    assert saved['mR@50'] == (1.0 + 0.0 + 1.0) / 3
    assert [row['name'] for row in saved['per_predicate']] == ['on', 'has', 'near']
    assert saved['images'] == {'total': 3, 'evaluated': 3, 'without_gt_relation': 0, 'without_prediction': 1,
                               'with_zeroshot_gt': 1, 'repeated_img_ids': 0}


def test_tool_options(tmp_path):
    dump, meta = write_dump(tmp_path)
    compat = run_tool([dump, '--reference-compat', '--topk', '10', '50'], tmp_path)
    assert compat['R@50'] == 1.0 and 'R@20' not in compat and 'R@10' in compat
    assert 'zR@50' not in compat and 'head_mR@50' not in compat  # no metainfo, no zero-shot file
    torch.save(torch.tensor([[1, 2, 1]]), tmp_path / 'zeroshot_triplet.pytorch')  # (0, 1, on), 1-based
    listed = run_tool([dump, '--zeroshot-triplets', str(tmp_path / 'zeroshot_triplet.pytorch')], tmp_path)
    assert listed['zR@20'] == 1.0
    strict = run_tool([dump, '--iou-thr', '1.0'], tmp_path)  # the predicted boxes equal the GT boxes
    assert strict['R@50'] == 2 / 3
    assert run_tool([dump, '--entity-ap'], tmp_path)['bbox_mAP'] == pytest.approx(1.0)


def test_tool_errors_name_the_dump(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.pkl'):
        run_tool([str(tmp_path / 'absent.pkl')], tmp_path)
    broken = two_object_record('broken', predicate=0, hit_rank=0)
    broken['pred_rel_pairs'] = broken['pred_rel_pairs'][:3]
    path = tmp_path / 'bad.pkl'
    path.write_bytes(pickle.dumps([two_object_record(1, 0, 0), broken]))
    with pytest.raises(ValueError, match=r"bad.pkl entry 1 \(img_id='broken'\): field pred_rel_scores "
                                         r"has 25 rows"):
        run_tool([str(path)], tmp_path)


def test_tool_prints_the_tables(tmp_path, capsys):
    dump, meta = write_dump(tmp_path)
    run_tool([dump, '--dataset-meta', meta], tmp_path)
    printed = capsys.readouterr().out
    assert '| R ' in printed and ' 66.67 |' in printed and '| near' in printed
    assert f'metrics written to {tmp_path / "tool_metrics.json"}' in printed
    run_tool([dump, '--no-per-predicate'], tmp_path)
    printed = capsys.readouterr().out
    assert '| R ' in printed and 'predicate' not in printed.split('images:')[0]
    assert 'note: no --zeroshot-triplets' in printed


def test_tool_command_line_help():
    # Without importing speaq_mm (that happens inside main), so this stays fast.
    result = subprocess.run([sys.executable, TOOL, '--help'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '--zeroshot-triplets' in result.stdout and '--reference-compat' in result.stdout


def test_benchmark_cross_check_runs(capsys):
    bench = load_benchmark()
    assert bench.main(['--images', '24', '--triplets', '120', '--chunk-size', '10']) == 0
    assert '0 differ' in capsys.readouterr().out
