"""Distributed end to end on CPU: tools/dist_train.sh with 2 gloo processes trains the toy mix recipe with an
exact global source mix, validates, checkpoints, and tools/dist_test.sh tests the checkpoint with the same
metrics as a single process."""
import glob
import os.path as osp
import re
import subprocess
from collections import Counter

import pytest

from speaq_mm.datasets.samplers import largest_remainder_counts
from tests.datasets_fixtures import load_tool
from tests.reliability_fixtures import (
    REAL_TEST,
    REAL_TRAIN,
    REPO_ROOT,
    VAL_IMAGES,
    free_port,
    load_complete,
    read_records,
    subprocess_env,
    write_run_config,
)

BATCH, MAX_ITERS, INTERVAL = 5, 4, 4
REAL_TRAIN_IMAGES = REAL_TRAIN - VAL_IMAGES
ONE_IMAGE_BATCHES = ['--cfg-options', 'test_dataloader.batch_size=1']  # the same batches in 1 or 2 processes


def run_script(script, *args):
    result = subprocess.run(['bash', osp.join(REPO_ROOT, 'tools', script), *args], cwd=REPO_ROOT,
                            env=subprocess_env(PORT=str(free_port())), capture_output=True, text=True,
                            timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


@pytest.mark.slow
def test_dist_train_and_test_on_two_cpu_processes(tmp_path, reliability_toy_data):
    test_main = load_tool('tools/test.py').main

    folder = str(tmp_path)
    config = write_run_config(folder, reliability_toy_data, max_iters=MAX_ITERS, interval=INTERVAL,
                              batch_size=BATCH)
    work, records = osp.join(folder, 'work'), osp.join(folder, 'records')
    output = run_script('dist_train.sh', config, '2')
    assert 'Distributed launcher: pytorch' in output and "'backend': 'gloo'" in output

    # Training: every global batch holds exactly the largest-remainder mix, split 4 + 3 / 3 + 4 over the ranks.
    expected = largest_remainder_counts([0.7, 0.3], 2 * BATCH).tolist()
    assert expected == [7, 3]
    ranks = [[r for r in read_records(records, rank) if r['event'] == 'train'] for rank in (0, 1)]
    assert [[r['iter'] for r in rank] for rank in ranks] == [list(range(1, MAX_ITERS + 1))] * 2
    for step in zip(*ranks):
        counts = [Counter(source for source, _ in record['samples']) for record in step]
        assert [len(record['samples']) for record in step] == [BATCH, BATCH]
        assert [sum(c[s] for c in counts) for s in ('real', 'synthetic')] == expected
        assert sorted(c['real'] for c in counts) == [3, 4]
    # Rank 0's part of a batch, then rank 1's, continue one stream per source, drawn without replacement within
    # each pass over the source: no image repeats before every image was drawn.
    real_stream = [img for step in zip(*ranks) for record in step for source, img in record['samples']
                   if source == 'real']
    passes = [real_stream[start:start + REAL_TRAIN_IMAGES]
              for start in range(0, len(real_stream) - REAL_TRAIN_IMAGES + 1, REAL_TRAIN_IMAGES)]
    assert len(passes) == 2 and all(len(set(images)) == REAL_TRAIN_IMAGES for images in passes)
    log_path = sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]
    log = open(log_path).read()
    assert len(re.findall(r'Iter\(train\) \[\d/4\].*source_frac_real: 0\.7000.*source_frac_synthetic: 0\.3000',
                          log)) == MAX_ITERS

    # Validation: results of both ranks gathered into one evaluation per validation, broadcast to both ranks.
    summaries = re.findall(r'images: total (\d+), evaluated (\d+),.* repeated img ids (\d+)', log)
    assert summaries == [(str(VAL_IMAGES), str(VAL_IMAGES), '0')] * (MAX_ITERS // INTERVAL)
    scores = [[(r['iter'], r['score']) for r in read_records(records, rank) if r['event'] == 'val']
              for rank in (0, 1)]
    assert scores[0] == scores[1] and [it for it, _ in scores[0]] == [MAX_ITERS]

    # Checkpoints written once, complete.
    checkpoint = osp.join(work, f'iter_{MAX_ITERS}.pth')
    assert load_complete(checkpoint)['meta']['iter'] == MAX_ITERS
    assert open(osp.join(work, 'last_checkpoint')).read() == checkpoint

    # Test: 5 images over 2 ranks (one padded), gathered without the padding; same metrics as one process.
    output = run_script('dist_test.sh', config, checkpoint, '2', '--work-dir', osp.join(folder, 'dist_test'),
                        *ONE_IMAGE_BATCHES)
    assert re.findall(r'images: total (\d+), evaluated (\d+),.* repeated img ids (\d+)', output) == \
        [(str(REAL_TEST), str(REAL_TEST), '0')]
    test_main([config, checkpoint, '--work-dir', osp.join(folder, 'single_test'), *ONE_IMAGE_BATCHES])
    tests = [r['metrics'] for r in read_records(records, 0) if r['event'] == 'test']
    # Up to float32 rounding: two processes may sum a convolution in another order than one.
    assert len(tests) == 2 and tests[0] == pytest.approx(tests[1], rel=1e-6, abs=1e-9) and 'sgg/R@50' in tests[0]
    assert tests[0]['probe/score'] > 0  # a metric that is not zero for an untrained model: the match means something
