"""The statistics, vocabulary and source-mix hooks of speaq_mm/engine/hooks on a stand-in runner: what each
hands the model or the message hub, and the one error of each when the data does not fit."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.logging import MessageHub

from speaq_mm.engine.hooks import SGGSourceMixHook, SpeaQTrainStatisticsHook, SpeaQVocabularyCheckHook
from tests.models_fixtures import NUM_CLASSES, NUM_PREDICATES, tiny_speaq_cfg
from tests.sampler_fixtures import make_sources

METAINFO = dict(classes=tuple(f'c{i}' for i in range(NUM_CLASSES)),
                predicates=tuple(f'p{i}' for i in range(NUM_PREDICATES)), fg_rel_count=[50, 20, 10, 10, 5, 5])


def runner_with(dataset, model=None, name='engine_hooks_test'):
    """What the hooks read of a Runner: the model, the train/val/test dataloaders' dataset, the message hub."""
    loader = SimpleNamespace(dataset=dataset)
    return SimpleNamespace(model=model, train_dataloader=loader, val_dataloader=loader, test_dataloader=loader,
                           train_loop=SimpleNamespace(dataloader=loader),
                           message_hub=MessageHub.get_instance(name))


def tiny_model():
    torch.manual_seed(0)
    return MODELS.build(tiny_speaq_cfg(assigner=dict(type='SpeaQTripletMatcher', use_group_mask=True,
                                                     num_groups=2)))


def test_train_statistics_reach_criterion_and_matcher_once():
    model = tiny_model()
    head = model.bbox_head
    assert head.predicate_counts is None
    SpeaQTrainStatisticsHook().before_train(runner_with(SimpleNamespace(metainfo=METAINFO), model))
    assert head.predicate_counts.tolist() == [50.0, 20.0, 10.0, 10.0, 5.0, 5.0]
    assert head.matcher.group_layout is not None
    assert head.criterion.predicate_class_weights[0].item() < head.criterion.predicate_class_weights[4].item()
    with pytest.raises(KeyError, match=r'train_dataloader.dataset \(SimpleNamespace\) has no fg_rel_count'):
        SpeaQTrainStatisticsHook().before_train(runner_with(SimpleNamespace(metainfo=dict(classes=())), model))


def test_a_model_without_statistics_is_left_alone():
    SpeaQTrainStatisticsHook().before_train(runner_with(SimpleNamespace(metainfo={}), torch.nn.Linear(1, 1)))


def test_vocabulary_check_names_the_count_and_the_loader():
    model = tiny_model()
    hook = SpeaQVocabularyCheckHook()
    hook.before_train(runner_with(SimpleNamespace(metainfo=METAINFO), model))
    three_classes = runner_with(SimpleNamespace(metainfo=dict(METAINFO, classes=('a', 'b', 'c'))), model)
    with pytest.raises(ValueError, match=r'model.bbox_head.num_entity_classes = 6 but train_dataloader.dataset has '
                                         r'3 classes'):
        hook.before_train(three_classes)
    with pytest.raises(ValueError, match=r'num_predicates = 6 but test_dataloader.dataset has 2 predicates'):
        hook.before_test(runner_with(SimpleNamespace(metainfo=dict(METAINFO, predicates=('x', 'y'))), model))


def packed(source, weight=None):
    sample = DetDataSample(metainfo=dict(img_path=f'{source}.jpg', source=source))
    if weight is not None:
        sample.set_metainfo(dict(sample_weight=weight))
    return sample


def test_source_mix_goes_to_the_message_hub():
    runner = runner_with(make_sources(sizes=(4, 2)), name='source_mix_test')
    hook = SGGSourceMixHook()
    hook.before_train(runner)
    batch = dict(data_samples=[packed('real', 1.0), packed('real', 1.0), packed('real', 1.0),
                               packed('synthetic', 0.5)])
    hook.after_train_iter(runner, 0, batch)
    hub = runner.message_hub
    assert hub.get_scalar('train/source_frac_real').current() == pytest.approx(0.75)
    assert hub.get_scalar('train/source_weight_synthetic').current() == pytest.approx(0.5)


def test_source_mix_refuses_a_sample_without_weight_as_the_model_does():
    runner = runner_with(make_sources(sizes=(4, 2)), name='source_mix_missing_weight')
    hook = SGGSourceMixHook()
    hook.before_train(runner)
    with pytest.raises(KeyError, match=r"synthetic.jpg \(source 'synthetic'\) has no sample_weight in its metainfo"):
        hook.after_train_iter(runner, 0, dict(data_samples=[packed('real', 1.0), packed('synthetic')]))
