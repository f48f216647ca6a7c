"""Fine-tuning into another vocabulary: default_hooks.checkpoint_check.transfer='by_name'.

A toy checkpoint (6 classes, 6 predicates, a few iterations of configs/toy/speaq_tiny_toy_real.py) is
fine-tuned with the shipped configs/toy/speaq_tiny_toy_own_vocab.py on a variant of the toy scenes with 8
classes and 5 predicates (4 classes and 3 predicates share names with the checkpoint, at other positions).
"""
import copy
import glob
import json
import os.path as osp
import shlex

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.hooks import Hook

from speaq_mm.datasets.scene_graph_json import json_to_vg, vg_to_json
from speaq_mm.datasets.toy_scenes import TOY_CLASSES, TOY_PREDICATES, make_toy_scenes
from speaq_mm.engine import build_runner, load_run_config
from speaq_mm.engine.hooks.checkpoint_compatibility_hook import CheckpointMismatchError
from speaq_mm.engine.vocabulary_transfer import (
    VocabularyTransferError,
    check_query_groups_follow_the_data,
    transfer_rows_by_name,
    vocabulary_rows,
)
from speaq_mm.utils import load_torch_file
from tests.datasets_fixtures import load_tool
from tests.models_fixtures import tiny_speaq_cfg
from tests.tools_fixtures import REPO, loader_options, one_torch_thread, snippet

TOY_CONFIG = osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_real.py')
OWN_VOCAB_CONFIG = osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_own_vocab.py')
NUM_VAL_IMAGES = 4
CHECKPOINT_ITERS = 3
FINE_TUNE_ITERS = 30
# The variant: star and triangle renamed, two classes without instances; left of / right of merged, on renamed.
CLASS_RENAMES = {'star': 'hexagon', 'triangle': 'pentagon'}
VARIANT_CLASSES = ('oval', 'square', 'hexagon', 'circle', 'pentagon', 'cross', 'arrow', 'diamond')
PREDICATE_RENAMES = {'left of': 'beside', 'right of': 'beside', 'on': 'touching'}
VARIANT_PREDICATES = ('touching', 'near', 'beside', 'below', 'above')
SHARED_CLASSES = ('square', 'circle', 'cross', 'diamond')
SHARED_PREDICATES = ('near', 'below', 'above')
HEAD_TENSORS = {'bbox_head.entity_classifier': (TOY_CLASSES, VARIANT_CLASSES),
                'bbox_head.predicate_classifier': (TOY_PREDICATES, VARIANT_PREDICATES)}


def write_variant(toy_root, json_path, out_root):
    """The toy scenes with the variant's names: one's own annotations, converted with json_to_vg."""
    vg_to_json(toy_root, json_path)
    with open(json_path) as file:
        content = json.load(file)
    content['classes'], content['predicates'] = list(VARIANT_CLASSES), list(VARIANT_PREDICATES)
    for image in content['images']:
        for obj in image['objects']:
            obj['name'] = CLASS_RENAMES.get(obj['name'], obj['name'])
        for relation in image['relations']:
            relation['predicate'] = PREDICATE_RENAMES.get(relation['predicate'], relation['predicate'])
    with open(json_path, 'w') as file:
        json.dump(content, file)
    json_to_vg(json_path, out_root, image_dir=osp.join(toy_root, 'VG_100K'))


def run_options(data_root, iters):
    return dict(loader_options('train', 'val', 'test'), **{
        'train_dataloader.dataset.data_root': data_root + '/',
        'val_dataloader.dataset.data_root': data_root + '/',
        'test_dataloader.dataset.data_root': data_root + '/',
        'train_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'val_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'test_dataloader.dataset.num_val_images': NUM_VAL_IMAGES,
        'train_dataloader.batch_size': 4,
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters + 1,
        'param_scheduler': None,
        'default_hooks.checkpoint.interval': iters, 'default_hooks.checkpoint.save_best': None,
        'default_hooks.logger.interval': 1, 'log_processor.window_size': 1})


class Snapshot(Exception):
    """Stops a run once the head was recorded (the fresh-initialisation reference)."""


class HeadRecorder(Hook):
    """Records the classifier rows at ``before_train`` (after loading) and the loss of every iteration."""

    priority = 'LOWEST'

    def __init__(self, stop=False):
        self.rows, self.losses, self.stop, self.layout = {}, [], stop, None

    def before_train(self, runner):
        state = runner.model.state_dict()
        self.rows = {key: state[key].clone() for key in state if key.startswith(tuple(HEAD_TENSORS))}
        self.layout = runner.model.bbox_head.matcher.group_layout
        if self.stop:
            raise Snapshot

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss'].detach()))


def train(config, work_dir, options, **overrides):
    """Train ``config``; returns (runner, HeadRecorder)."""
    recorder = HeadRecorder(stop=overrides.pop('_stop', False))
    cfg = load_run_config(config, options, work_dir)
    cfg.merge_from_dict(overrides)
    with one_torch_thread():
        runner = build_runner(cfg)
        runner.register_hook(recorder)
        try:
            runner.train()
        except Snapshot:
            pass
    return runner, recorder


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """The toy data, its checkpoint (6 classes, 6 predicates) and the 8-class / 5-predicate variant."""
    root = tmp_path_factory.mktemp('vocabulary_transfer')
    toy_root, variant_root = str(root / 'toy_real'), str(root / 'toy_own_vocab')
    make_toy_scenes(toy_root, num_train=NUM_VAL_IMAGES + 24, num_test=4, seed=7)
    write_variant(toy_root, str(root / 'own_annotations.json'), variant_root)
    train(TOY_CONFIG, str(root / 'toy_work'), run_options(toy_root, CHECKPOINT_ITERS))
    checkpoint = osp.join(root, 'toy_work', f'iter_{CHECKPOINT_ITERS}.pth')
    return dict(root=root, variant_root=variant_root, checkpoint=checkpoint)


def fine_tune(toy, name, transfer='by_name', checkpoint=None, iters=FINE_TUNE_ITERS, stop=False):
    options = dict(run_options(toy['variant_root'], iters), load_from=checkpoint or toy['checkpoint'])
    if transfer:
        options['default_hooks.checkpoint_check.transfer'] = transfer
    if stop:
        options.pop('load_from')
    return train(OWN_VOCAB_CONFIG, str(toy['root'] / name), options, _stop=stop)


def test_shared_rows_come_from_the_checkpoint_new_rows_are_fresh_and_training_learns(toy):
    saved = load_torch_file(toy['checkpoint'])
    assert saved['meta']['dataset_meta']['classes'] == TOY_CLASSES
    runner, tuned = fine_tune(toy, 'by_name')
    _, fresh = fine_tune(toy, 'fresh', transfer=None, stop=True)  # same config and seed, nothing loaded
    for prefix, (old_names, new_names) in HEAD_TENSORS.items():
        for suffix in ('weight', 'bias'):
            key = f'{prefix}.{suffix}'
            loaded, initial, old = tuned.rows[key], fresh.rows[key], saved['state_dict'][key]
            assert loaded.shape[0] == len(new_names) + 1 and old.shape[0] == len(old_names) + 1
            shared = [name for name in new_names if name in old_names]
            assert len(shared) == (4 if 'entity' in prefix else 3)
            for name in shared:
                assert torch.equal(loaded[new_names.index(name)], old[old_names.index(name)]), (key, name)
                assert not torch.equal(loaded[new_names.index(name)], initial[new_names.index(name)])
            assert torch.equal(loaded[-1], old[-1]), f'{key}: the no-object / no-relation row'
            for name in (name for name in new_names if name not in old_names):
                assert torch.equal(loaded[new_names.index(name)], initial[new_names.index(name)]), (key, name)
    # The query groups come from the variant's train statistics (5 predicates).
    assert tuned.layout is not None and tuned.layout.predicate_group.shape == (5,)
    assert len(tuned.losses) == FINE_TUNE_ITERS
    first, last = sum(tuned.losses[:5]) / 5, sum(tuned.losses[-5:]) / 5
    assert last < 0.9 * first, tuned.losses
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'transfer=by_name' in log
    assert '4: square, circle, cross, diamond' in log and '4: oval, hexagon, pentagon, arrow' in log
    assert '2: star, triangle' in log and '3: near, below, above' in log and '3: left of, on, right of' in log


def test_without_the_option_the_mismatched_keys_are_named(toy):
    with pytest.raises(CheckpointMismatchError) as error:
        fine_tune(toy, 'strict', transfer=None)
    message = str(error.value)
    for key in ('bbox_head.entity_classifier.weight', 'bbox_head.entity_classifier.bias',
                'bbox_head.predicate_classifier.weight', 'bbox_head.predicate_classifier.bias'):
        assert f'{key}: ' in message
    assert '--cfg-options default_hooks.checkpoint_check.transfer=by_name' in message


def test_a_checkpoint_without_names_is_refused_in_this_mode(toy, tmp_path):
    checkpoint = load_torch_file(toy['checkpoint'])
    del checkpoint['meta']['dataset_meta']['classes']
    path = str(tmp_path / 'no_names.pth')
    torch.save(checkpoint, path)
    with pytest.raises(VocabularyTransferError, match=r'has no classes names \(meta.dataset_meta.classes\)'):
        fine_tune(toy, 'no_names', checkpoint=path)


def test_every_other_shape_mismatch_is_still_refused(toy, tmp_path):
    checkpoint = load_torch_file(toy['checkpoint'])
    table = checkpoint['state_dict']['relation_query_embedding.weight']
    checkpoint['state_dict']['relation_query_embedding.weight'] = torch.cat([table, table])
    path = str(tmp_path / 'other_queries.pth')
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointMismatchError, match='relation_query_embedding.weight') as error:
        fine_tune(toy, 'other_queries', checkpoint=path)
    assert 'classifier' not in str(error.value)  # the vocabulary rows were mapped


def test_the_head_declares_every_tensor_whose_shape_follows_the_vocabulary():
    def model(classes, predicates):
        cfg = tiny_speaq_cfg()
        cfg['bbox_head'].update(num_entity_classes=classes, num_predicates=predicates)
        return MODELS.build(cfg)

    base, other = model(6, 6).state_dict(), model(8, 5).state_dict()
    assert set(base) == set(other)
    differing = {key for key in base if base[key].shape != other[key].shape}
    assert differing == set(vocabulary_rows(model(6, 6)))


def test_transfer_refuses_unknown_modes():
    from speaq_mm.engine.hooks import SpeaQCheckpointCompatibilityHook
    with pytest.raises(ValueError, match="transfer must be one of \\('strict', 'by_name'\\)"):
        SpeaQCheckpointCompatibilityHook(transfer='by_position')
    assert copy.deepcopy(SpeaQCheckpointCompatibilityHook()).transfer == 'strict'


def substitute(word, paths):
    for placeholder, path in paths.items():
        word = word.replace(placeholder, path)
    return word


def test_the_documented_commands_fine_tune_the_toy_checkpoint(toy, tmp_path):
    """docs/own_data.md's command block, with the variant as the user's COCO-style annotations."""
    from speaq_mm.datasets.scene_graph_json import json_to_coco_rel
    coco_dir = str(tmp_path / 'my_coco_rel')
    json_to_coco_rel(str(toy['root'] / 'own_annotations.json'), coco_dir)
    converted = str(tmp_path / 'toy_own_vocab')
    paths = {'data/my_coco_rel': coco_dir, 'data/my_scene_graphs.json': str(tmp_path / 'my_scene_graphs.json'),
             'data/my_images': str(toy['root'] / 'toy_real' / 'VG_100K'), 'data/toy_own_vocab': converted,
             'work_dirs/speaq_tiny_toy_real/iter_1500.pth': toy['checkpoint']}
    block = snippet('docs/own_data.md', 'coco_rel_to_json.py', language='bash')
    commands = [shlex.split(line) for line in block.splitlines() if line.startswith('python ')]
    assert [words[1] for words in commands] == ['tools/dataset_converters/coco_rel_to_json.py',
                                                'tools/dataset_converters/json_to_vg.py', 'tools/train.py']
    work_dir = str(tmp_path / 'work')
    for words in commands:
        args = [substitute(word, paths) for word in words[2:]]
        if words[1] == 'tools/train.py':
            quick = run_options(converted, 2)
            args += [f'{key}={value}' for key, value in quick.items()] + ['--work-dir', work_dir]
            with one_torch_thread():
                load_tool(words[1]).main(args)
        else:
            load_tool(words[1]).main(args)
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert '4: square, circle, cross, diamond' in log
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def tiny_model(classes, predicates, seed):
    torch.manual_seed(seed)
    cfg = tiny_speaq_cfg()
    cfg['bbox_head'].update(num_entity_classes=classes, num_predicates=predicates)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def tiny_checkpoint(prefix=''):
    state = tiny_model(len(TOY_CLASSES), len(TOY_PREDICATES), seed=1).state_dict()
    return dict(state_dict={prefix + key: value for key, value in state.items()},
                meta=dict(dataset_meta=dict(classes=TOY_CLASSES, predicates=TOY_PREDICATES)))


VARIANT = dict(classes=VARIANT_CLASSES, predicates=VARIANT_PREDICATES)


def test_module_prefixed_checkpoints_are_mapped_too():
    model, checkpoint = tiny_model(8, 5, seed=2), tiny_checkpoint('module.')
    old = checkpoint['state_dict']['module.bbox_head.predicate_classifier.weight'].clone()
    transfer = transfer_rows_by_name(model, checkpoint, VARIANT)
    mapped = checkpoint['state_dict']['module.bbox_head.predicate_classifier.weight']
    assert mapped.shape[0] == 6 and len(transfer.tensors) == 4
    assert torch.equal(mapped[VARIANT_PREDICATES.index('near')], old[TOY_PREDICATES.index('near')])
    assert not transfer.is_identity


def test_resuming_testing_and_reference_groups_are_refused_where_rows_would_be_wrong():
    model = tiny_model(8, 5, seed=2)
    with pytest.raises(VocabularyTransferError, match='while resuming'):
        transfer_rows_by_name(model, tiny_checkpoint(), VARIANT, require_identity=True)
    with pytest.raises(VocabularyTransferError, match=r"outside training.*classes \['oval'"):
        transfer_rows_by_name(model, tiny_checkpoint(), VARIANT, allow_new=False)
    same = tiny_model(6, 6, seed=2)
    identity = transfer_rows_by_name(same, tiny_checkpoint(), dict(classes=TOY_CLASSES, predicates=TOY_PREDICATES),
                                     allow_new=False, require_identity=True)
    assert identity.is_identity
    transfer = transfer_rows_by_name(model, tiny_checkpoint(), VARIANT)
    model.bbox_head.matcher.group_counts = 'reference'
    with pytest.raises(VocabularyTransferError, match="group_counts='train_statistics'"):
        check_query_groups_follow_the_data(model, transfer)


def test_names_that_disagree_with_the_tensors_are_refused():
    checkpoint = tiny_checkpoint()
    checkpoint['meta']['dataset_meta']['classes'] = TOY_CLASSES[:5]
    with pytest.raises(VocabularyTransferError, match=r'entity_classifier.weight has shape \(7, 32\)'):
        transfer_rows_by_name(tiny_model(8, 5, seed=2), checkpoint, VARIANT)
    with pytest.raises(VocabularyTransferError, match="lists 'oval' twice"):
        transfer_rows_by_name(tiny_model(8, 5, seed=2), tiny_checkpoint(),
                              dict(VARIANT, classes=('oval',) + VARIANT_CLASSES[1:-1] + ('oval',)))


def test_the_converter_records_the_names_of_a_reference_checkpoint(tmp_path):
    from speaq_mm.datasets.vg_format import write_vg_dicts
    converter = load_tool('tools/model_converters/speaq_d2_to_mm.py')
    src, dst, dicts = tmp_path / 'd2.pth', tmp_path / 'mm.pth', str(tmp_path / 'dicts.json')
    torch.save(dict(model={'detr.relation_query_embed.weight': torch.zeros(4, 8)}), src)
    write_vg_dicts(dicts, TOY_CLASSES, TOY_PREDICATES, labels=[0], predicate_labels=[0])
    converter.main([str(src), str(dst), '--dicts-file', dicts])
    meta = load_torch_file(str(dst))['meta']['dataset_meta']
    assert meta == dict(classes=TOY_CLASSES, predicates=TOY_PREDICATES)


def test_testing_with_names_the_checkpoint_lacks_is_refused(toy):
    options = dict(run_options(toy['variant_root'], 1), load_from=toy['checkpoint'])
    options['default_hooks.checkpoint_check.transfer'] = 'by_name'
    cfg = load_run_config(OWN_VOCAB_CONFIG, options, str(toy['root'] / 'test_time'))
    with one_torch_thread(), pytest.raises(VocabularyTransferError, match='outside training'):
        build_runner(cfg).test()
