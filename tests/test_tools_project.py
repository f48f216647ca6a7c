"""projects/SyntheticMix: its config and hook, run end to end by the shared project run (a generated synthetic
JSON set converted with tools/dataset_converters and trained mixed with the toy real scenes)."""
import json
import os.path as osp
import re
from types import SimpleNamespace

import pytest
from mmdet.structures import DetDataSample
from mmengine.config import Config

from tests.tools_fixtures import PROJECT_CONFIG, PROJECT_ITERS, REPO

PROJECT = osp.join(REPO, 'projects', 'SyntheticMix')


def test_config_mixes_the_converted_set_through_the_project_module():
    cfg = Config.fromfile(PROJECT_CONFIG)
    assert 'projects.SyntheticMix.synthetic_mix' in cfg.custom_imports.imports
    real, synthetic = cfg.train_dataloader.dataset.datasets
    assert (real.source, synthetic.source) == ('real', 'synthetic')
    assert synthetic.data_root == 'data/synthetic_mix/vg/' and synthetic.num_val_images == 0
    assert cfg.train_dataloader.batch_sampler.source_ratio == dict(real=0.7, synthetic=0.3)
    assert cfg.custom_hooks == [dict(type='SGGSampleWeightRampHook', source='synthetic', start_factor=1.0,
                                     end_factor=0.2)]
    assert {'source_mix', 'train_statistics', 'non_finite_guard'} <= set(cfg.default_hooks)  # from the runtime
    assert cfg.train_cfg.max_iters == 400
    # The recipe's 64 px pipeline reaches both training sets and the test set (the docs' snippet keeps it).
    scales = [step.scale for dataset in (*cfg.train_dataloader.dataset.datasets, cfg.test_dataloader.dataset)
              for step in dataset.pipeline if step.type == 'Resize']
    assert scales == [(64, 64)] * 3


def test_end_to_end_run_ramps_the_synthetic_weight(project_run):
    with open(project_run.scalars) as file:
        records = [json.loads(line) for line in file if line.strip()]
    train = [r for r in records if 'loss' in r]
    assert [r['step'] for r in train] == list(range(1, PROJECT_ITERS + 1))
    # Base weight 0.5 x the factor 1.0 -> 0.2 over the run, taken at iterations 0, 1, 2, 3 of 4.
    expected = [0.5 * (1.0 + (0.2 - 1.0) * i / PROJECT_ITERS) for i in range(PROJECT_ITERS)]
    assert [r['source_weight_synthetic'] for r in train] == pytest.approx(expected)
    assert all(r['source_weight_real'] == 1.0 and r['source_frac_synthetic'] == 0.25 for r in train)
    assert osp.isfile(project_run.checkpoint)
    with open(project_run.metrics_json) as file:
        metrics = json.load(file)
    assert 0 <= metrics['R@50'] <= 1 and len(metrics['per_predicate']) == 6


def hook_module():
    import projects.SyntheticMix.synthetic_mix as module
    return module


def test_ramp_factor_and_bad_settings():
    hook_cls = hook_module().SGGSampleWeightRampHook
    hook = hook_cls(source='synthetic', start_factor=1.0, end_factor=0.0, begin=10, end=20)
    assert [hook.factor(i, 100) for i in (0, 10, 15, 20, 50)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert hook_cls(start_factor=2.0, end_factor=1.0).factor(50, 100) == 1.5  # end: the run's last iteration
    with pytest.raises(ValueError, match='start_factor and end_factor'):
        hook_cls(start_factor=-1.0)
    with pytest.raises(ValueError, match='begin < end'):
        hook_cls(begin=5, end=5)


def test_hook_reweights_only_its_source_and_checks_it_exists():
    hook = hook_module().SGGSampleWeightRampHook(source='synthetic', start_factor=1.0, end_factor=0.0)
    samples = []
    for source, weight in (('real', 1.0), ('synthetic', 0.5)):
        sample = DetDataSample()
        sample.set_metainfo(dict(source=source, sample_weight=weight))
        samples.append(sample)
    runner = SimpleNamespace(iter=25, max_iters=100, train_dataloader=SimpleNamespace(
        dataset=SimpleNamespace(datasets=[SimpleNamespace(source='real'), SimpleNamespace(source='synthetic')])))
    hook.before_train(runner)
    hook.before_train_iter(runner, 0, dict(data_samples=samples))
    assert [s.metainfo['sample_weight'] for s in samples] == [1.0, pytest.approx(0.375)]
    runner.train_dataloader.dataset.datasets[1].source = 'rendered'
    with pytest.raises(ValueError, match='source "synthetic" is not one of the training sources'):
        hook.before_train(runner)


def test_readme_commands_name_existing_files():
    with open(osp.join(PROJECT, 'README.md')) as file:
        readme = file.read()
    paths = set(re.findall(r'(?<![\w/])(?:tools|projects|configs|synthetic_mix)/[\w/.-]+\.py', readme))
    assert {'tools/dataset_converters/json_to_vg.py', 'projects/SyntheticMix/tools/make_synthetic_json.py',
            'projects/SyntheticMix/configs/speaq_tiny_toy_real_json_synthetic.py'} <= paths
    for path in paths:  # from the repository root, or inside the project (its own table)
        assert osp.isfile(osp.join(REPO, path)) or osp.isfile(osp.join(PROJECT, path)), path
