"""The safeguards of the shipped recipes, switched on by the configs users run (no test-only hooks).

``tools/test.py`` with the shipped toy config must exit non-zero and write no metrics for a checkpoint that
shares no key with the model or whose shapes differ; a model whose vocabulary differs from the dataset's is
refused; a DETR detector checkpoint still initialises the R-101 SpeaQ recipe (its ``load_from``).
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from speaq_mm.engine import load_run_config
from speaq_mm.engine.hooks.checkpoint_compatibility_hook import CheckpointMismatchError, check_checkpoint_fits
from speaq_mm.utils import load_torch_file
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import REPO, TOY_MIX_CONFIG, one_torch_thread, tool_test_options, without_relation_branch

SHIPPED_RECIPES = ['configs/toy/speaq_tiny_toy_mix.py', 'configs/toy/speaq_tiny_toy_real.py',
                   'configs/visual_genome.py', 'configs/speaq_multi.py', 'configs/synthetic_genome.py',
                   'configs/iterative_sg.py', 'configs/detr_r101_vg150.py',
                   'projects/SyntheticMix/configs/speaq_tiny_toy_real_json_synthetic.py']
REQUIRED_HOOKS = {'train_statistics': 'SpeaQTrainStatisticsHook', 'non_finite_guard': 'SpeaQNonFiniteGuardHook',
                  'source_mix': 'SGGSourceMixHook', 'checkpoint_check': 'SpeaQCheckpointCompatibilityHook',
                  'vocabulary_check': 'SpeaQVocabularyCheckHook',
                  'empty_relations_guard': 'SpeaQEmptyRelationsGuardHook'}


@pytest.mark.parametrize('recipe', SHIPPED_RECIPES)
def test_every_recipe_has_the_safeguards_and_restates_none(recipe):
    cfg = Config.fromfile(osp.join(REPO, recipe))
    assert {name: cfg.default_hooks[name]['type'] for name in REQUIRED_HOOKS} == REQUIRED_HOOKS
    assert all(hook['type'] not in REQUIRED_HOOKS.values() for hook in cfg.get('custom_hooks', []))


def run_test_tool(toy_run, checkpoint, work_dir):
    """``tools/test.py`` on the shipped toy recipe, as a user runs it."""
    options = [f'{key}={value}' for key, value in tool_test_options(toy_run.real_root, 'safety_recipes').items()]
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), TOY_MIX_CONFIG, checkpoint,
                           '--work-dir', str(work_dir), '--cfg-options', *options],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def no_metrics_in(work_dir):
    return not glob.glob(osp.join(str(work_dir), '**', '*metrics*.json'), recursive=True)


def test_test_tool_refuses_a_checkpoint_sharing_no_key_with_the_model(tmp_path, toy_run):
    checkpoint = load_torch_file(toy_run.checkpoint)
    checkpoint['state_dict'] = {f'model.{key}': value for key, value in checkpoint['state_dict'].items()}
    path = str(tmp_path / 'prefixed.pth')
    torch.save(checkpoint, path)
    result = run_test_tool(toy_run, path, tmp_path / 'test')
    assert result.returncode != 0
    assert f'CheckpointMismatchError: checkpoint {path} lacks' in result.stderr
    assert 'Keys of the checkpoint the model does not have: model.backbone.' in result.stderr
    assert no_metrics_in(tmp_path / 'test')


def test_test_tool_refuses_a_checkpoint_with_a_shape_mismatch(tmp_path, toy_run):
    checkpoint = load_torch_file(toy_run.checkpoint)
    key = 'bbox_head.predicate_classifier.weight'
    checkpoint['state_dict'][key] = checkpoint['state_dict'][key][:-1]  # one predicate fewer
    path = str(tmp_path / 'fewer_predicates.pth')
    torch.save(checkpoint, path)
    result = run_test_tool(toy_run, path, tmp_path / 'test')
    assert result.returncode != 0
    assert f'checkpoint {path} does not fit the model: 1 tensor(s) have other shapes' in result.stderr
    assert f'{key}: (6, 128) vs (7, 128)' in result.stderr
    assert no_metrics_in(tmp_path / 'test')


def test_test_tool_refuses_a_checkpoint_without_the_relation_branch(toy_run, tmp_path):
    """Training init may fill part of the model; a test may not: the missing keys are named."""
    run = toy_run
    path, dropped = without_relation_branch(run, tmp_path)
    init_default_scope('mmdet')
    model = MODELS.build(load_run_config(TOY_MIX_CONFIG).model)
    share = 1 - len(dropped) / len(model.state_dict())
    assert 0.6 < share < 0.85, share
    check_checkpoint_fits(model, load_torch_file(path), min_matched_share=0.5)  # good enough to start training
    result = run_test_tool(run, path, tmp_path / 'test')
    assert result.returncode != 0
    assert (f'CheckpointMismatchError: checkpoint {path} lacks {len(dropped)} of the model\'s '
            f'{len(model.state_dict())} tensors') in result.stderr
    assert 'bbox_head.predicate_classifier' in result.stderr and dropped[0] in result.stderr
    assert no_metrics_in(tmp_path / 'test')


@pytest.mark.parametrize('key', ['classes', 'predicates'])
def test_a_checkpoint_whose_names_are_swapped_is_refused_at_test_time(toy_run, tmp_path, key):
    """Same counts, two names in the other order: the model would be scored against the wrong names."""
    run = toy_run
    checkpoint = load_torch_file(run.checkpoint)
    names = list(checkpoint['meta']['dataset_meta'][key])
    names[0], names[1] = names[1], names[0]
    checkpoint['meta']['dataset_meta'][key] = tuple(names)
    path = str(tmp_path / 'swapped.pth')
    torch.save(checkpoint, path)
    options = tool_test_options(run.real_root, f'swapped_{key}')
    with one_torch_thread(), pytest.raises(ValueError, match=f"{key}: #0 is {names[0]!r} in the checkpoint but "
                                                             f"{names[1]!r} in the dataset"):
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, path, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                                         *[f'{k}={v}' for k, v in options.items()]])
    assert no_metrics_in(tmp_path / 'test')


def test_a_model_whose_classes_differ_from_the_dataset_is_refused_at_test_time(tmp_path, toy_run):
    options = dict(tool_test_options(toy_run.real_root, 'vocabulary_test'), **{'model.bbox_head.num_entity_classes': 8})
    init_default_scope('mmdet')
    model = MODELS.build(load_run_config(TOY_MIX_CONFIG, options, str(tmp_path)).model)
    path = str(tmp_path / 'eight_classes.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)  # fits the 8-class model exactly
    with one_torch_thread(), pytest.raises(ValueError, match=r'model.bbox_head.num_entity_classes = 8 but '
                                                             r'test_dataloader.dataset has 6 classes'):
        load_tool('tools/test.py').main([TOY_MIX_CONFIG, path, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                                         *[f'{k}={v}' for k, v in options.items()]])
    assert no_metrics_in(tmp_path / 'test')


def test_a_detr_detector_still_initialises_the_r101_recipe():
    """The default min_matched_share must let the recipe's load_from (a DETR detector) through."""
    init_default_scope('mmdet')

    def build(name):
        cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', f'{name}.py'))
        cfg.model.backbone.init_cfg = None
        return MODELS.build(cfg.model)

    speaq, detr = build('speaq_r101'), build('detr_r101')
    check_checkpoint_fits(speaq, dict(state_dict=detr.state_dict()), min_matched_share=0.5)  # fills 80 %
    with pytest.raises(CheckpointMismatchError, match='fills only 1023 of the model\'s 1273 tensors'):
        check_checkpoint_fits(speaq, dict(state_dict=detr.state_dict()), min_matched_share=0.9)
