"""The tiny SpeaQ learns on toy scenes (a short version of speaq_mm.apis.toy_demo's run), and the demo
tooling writes its outputs."""
import json
import os.path as osp

import numpy as np
import pytest

from speaq_mm.apis.toy_demo import train_and_evaluate
from speaq_mm.datasets.toy_scenes import make_toy_scenes
from speaq_mm.engine import build_runner, load_run_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def data_options(root):
    return {f'{split}_dataloader.dataset.data_root': root + '/' for split in ('train', 'val', 'test')}


@pytest.mark.slow
def test_loss_decreases_within_tens_of_iterations(tmp_path):
    # Toy scenes drawn at the 64 px the toy configs train at, so the pipeline does not resize.
    root = str(tmp_path / 'toy_real')
    make_toy_scenes(root, num_train=40, num_test=4, image_size=64, seed=3)
    options = dict(data_options(root), **{
        'train_dataloader.batch_size': 4, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'train_dataloader.dataset.num_val_images': 4,
        'train_cfg.max_iters': 30, 'default_hooks.checkpoint.interval': 1000, 'default_hooks.logger.interval': 1})
    cfg = load_run_config(osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_real.py'), options, str(tmp_path / 'run'))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert losses[-5:].mean() < 0.85 * losses[:5].mean()


@pytest.mark.slow
def test_demo_pipeline_writes_metrics_curves_and_checkpoint(tmp_path):
    lines = []
    result = train_and_evaluate(osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py'), str(tmp_path / 'demo'),
                                minutes=5, max_iters=4, val_interval=2, data_dir=str(tmp_path / 'data'),
                                num_train=120, num_test=6, cfg_options={'train_dataloader.num_workers': 0,
                                                                       'train_dataloader.persistent_workers': False,
                                                                       'test_dataloader.num_workers': 0,
                                                                       'test_dataloader.persistent_workers': False,
                                                                       'val_dataloader.num_workers': 0,
                                                                       'val_dataloader.persistent_workers': False},
                                log=lines.append)
    with open(tmp_path / 'demo' / 'metrics.json') as f:
        written = json.load(f)
    for key in ('R@20', 'R@50', 'R@100', 'mR@50'):
        assert 0 <= written[key] <= 1
    assert written['iterations'] == 4 and [point['iter'] for point in written['curve']] == [2, 4]
    for key in ('checkpoint', 'learning_curve', 'loss_curve', 'log'):
        assert osp.isfile(result[key]), key
    assert any(line.startswith('[train] iter 4/4') for line in lines)
    assert any(line.startswith('[data]') for line in lines)
