"""SpeaQDetector end to end on hand-built batches: losses, predictions, statistics, masks, DETR loading."""
import copy
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import load_state_dict

from speaq_mm.engine.hooks.vocabulary_check_hook import vocabulary_mismatches
from tests.models_fixtures import (
    NUM_CLASSES,
    NUM_PREDICATES,
    image_batch,
    make_sample,
    three_object_sample,
    tiny_speaq_cfg,
    two_object_sample,
)

METAINFO = dict(classes=tuple(f'c{i}' for i in range(NUM_CLASSES)),
                predicates=tuple(f'p{i}' for i in range(NUM_PREDICATES)),
                fg_rel_count=[50, 20, 10, 10, 5, 5])


def build(cfg=None, statistics=True):
    torch.manual_seed(0)
    model = MODELS.build(cfg or tiny_speaq_cfg())
    model.init_weights()
    if statistics:
        model.set_train_statistics(METAINFO, 'test metainfo')
    return model


def loss_of(model, samples, seed=0):
    data = model.data_preprocessor(image_batch(samples, seed), True)
    return model(**data, mode='loss')


SPEAQ_ASSIGNER = dict(type='SpeaQTripletMatcher', one_to_many='dynamic', k=4, quality_combine='max',
                      predicate_score_weight=-0.5, use_group_mask=True, num_groups=2, match_independent=True)


@pytest.mark.parametrize('assigner', [None, SPEAQ_ASSIGNER])
def test_losses_of_every_layer_and_logging_values(assigner):
    model = build(tiny_speaq_cfg(assigner=assigner))
    losses = loss_of(model, [two_object_sample(source='real'), three_object_sample(source='synthetic',
                                                                                   sample_weight=0.5)])
    terms = ['loss_ce_subject', 'loss_bbox_subject', 'loss_giou_subject', 'loss_ce_object', 'loss_bbox_object',
             'loss_giou_object', 'loss_relation', 'loss_bbox_relation', 'loss_giou_relation']
    assert set(terms) | {f'd0.{t}' for t in terms} == {k for k in losses if 'loss' in k}
    assert {'k_mean', 'd0.k_mean', 'class_error_subject'} <= set(losses)
    # Per-source diagnostics go to the message hub, never into the dict parse_losses sums.
    logged = MessageHub.get_current_instance().log_scalars
    assert {'train/real.relation_ce', 'train/synthetic.relation_giou'} <= set(logged)
    assert not any('relation_ce' in name or 'relation_giou' in name for name in losses)
    assert all(math.isfinite(v.item()) for v in losses.values())
    parsed, _ = model.parse_losses(losses)
    parsed.backward()
    assert model.relation_query_embedding.weight.grad is not None
    assert model.decoder.relation_graph_query_attn[0].k_proj_weight.grad is not None


def test_missing_sample_weight_is_an_error_naming_sample_and_source():
    model = build()
    model.eval()  # no dropout; the tiny config has none anyway
    with pytest.raises(KeyError, match=r"unweighted.jpg \(source 'synthetic'\) has no sample_weight"):
        loss_of(model, [two_object_sample(source='synthetic', img_path='unweighted.jpg', sample_weight=None)])
    plain = loss_of(model, [two_object_sample(sample_weight=1.0)])
    half = loss_of(model, [two_object_sample(sample_weight=0.5)])
    for name in plain:
        if name.startswith('loss') or '.loss' in name:
            assert torch.allclose(half[name] * 2, plain[name]), name


def test_a_source_named_like_a_loss_leaves_the_objective_unchanged():
    model = build().eval()

    def objective(second_source):
        samples = [two_object_sample(source='real', sample_weight=1.0),
                   three_object_sample(source=second_source, sample_weight=0.5)]
        losses = loss_of(model, samples)
        return model.parse_losses(losses)[0], losses

    plain, _ = objective('synthetic')
    named_like_a_loss, losses = objective('loss_synthetic')
    assert torch.equal(plain, named_like_a_loss)
    assert not any(name.startswith('loss_synthetic') for name in losses)
    assert 'train/loss_synthetic.relation_ce' in MessageHub.get_current_instance().log_scalars


def test_predictions_follow_the_data_contract_for_any_batch_size():
    model = build().eval()
    samples = [two_object_sample(img_shape=(64, 48), batch_input_shape=(64, 64)), three_object_sample()]
    for sample in samples:
        sample.set_metainfo(dict(ori_shape=(128, 96 if sample.img_shape[1] == 48 else 128)))
    batch = image_batch(samples)
    single_batch = dict(inputs=batch['inputs'][1:], data_samples=copy.deepcopy(samples[1:]))
    with torch.no_grad():
        batched = model(**model.data_preprocessor(batch, False), mode='predict')
        single = model(**model.data_preprocessor(single_batch, False), mode='predict')
    for result in batched:
        instances, relations = result.pred_instances, result.pred_relations
        assert instances.bboxes.shape[1] == 4 and len(instances.labels) == len(instances.scores)
        assert relations.scores.shape[1] == NUM_PREDICATES + 1
        assert relations.pairs.dtype == torch.long and int(relations.pairs.max()) < len(instances)
        assert bool((relations.triplet_scores[:-1] >= relations.triplet_scores[1:]).all())
        assert relations.query_ids.max() < 8 and bool((relations.labels < NUM_PREDICATES).all())
        assert bool((instances.bboxes[:, 0::2] <= result.ori_shape[1]).all())
    # The second image's graph does not depend on its batch (same padding-free input size).
    assert torch.allclose(batched[1].pred_relations.triplet_scores, single[0].pred_relations.triplet_scores,
                          atol=1e-5)


def test_padding_mask_is_ceil_of_the_image_over_the_stride():
    model = build()
    samples = [make_sample([[0, 0, 8, 8]], [0], [], [], img_shape=(60, 41), batch_input_shape=(64, 64)),
               make_sample([[0, 0, 8, 8]], [0], [], [], img_shape=(64, 64))]
    features = (torch.zeros(2, 32, 8, 8),)
    encoder_inputs, _ = model.pre_transformer(features, samples)
    mask = encoder_inputs['feat_mask'].reshape(2, 8, 8)
    # ceil(60 / 8) = 8 rows, ceil(41 / 8) = 6 columns are valid.
    assert not mask[0, :, :6].any() and mask[0, :, 6:].all()
    assert not mask[1].any()


def test_statistics_are_required_and_checked():
    model = build(statistics=False)
    with pytest.raises(RuntimeError, match='set_train_statistics'):
        loss_of(model, [two_object_sample()])
    with pytest.raises(KeyError, match='toy_train has no fg_rel_count'):
        model.set_train_statistics(dict(classes=METAINFO['classes']), 'toy_train')
    # Class and predicate counts are SpeaQVocabularyCheckHook's one check (tests/test_engine_hooks.py).
    assert vocabulary_mismatches(model, dict(METAINFO, classes=('a', 'b', 'c'))) == [
        ('num_entity_classes', 6, 'classes', 3)]
    with pytest.raises(ValueError, match=r"toy_train \['fg_rel_count'\]: all predicate counts are zero"):
        model.set_train_statistics(dict(METAINFO, fg_rel_count=[0] * 6), 'toy_train')


def test_bad_relation_indices_and_empty_boxes():
    model = build()
    bad = make_sample([[0, 0, 8, 8]], [0], [[0, 3]], [1], img_path='broken.jpg')
    with pytest.raises(ValueError, match='broken.jpg: gt_relations.pairs'):
        loss_of(model, [bad])
    # A zero-width subject: its relation is dropped before matching, the losses stay finite.
    empty = make_sample([[5, 5, 5, 20], [30, 30, 50, 50]], [0, 1], [[0, 1], [1, 0]], [2, 3])
    losses = loss_of(model, [empty])
    assert all(math.isfinite(v.item()) for v in losses.values())


def detr_cfg(speaq_cfg):
    """An mmdet DETR with the same backbone, neck, encoder and decoder layers as the tiny SpeaQ config."""
    cfg = copy.deepcopy(speaq_cfg)
    return dict(
        type='DETR', num_queries=cfg['num_entity_queries'], data_preprocessor=cfg['data_preprocessor'],
        backbone=cfg['backbone'], neck=cfg['neck'], encoder=cfg['encoder'],
        decoder=dict(num_layers=cfg['decoder']['num_layers'], layer_cfg=cfg['decoder']['layer_cfg'],
                     return_intermediate=True),
        positional_encoding=cfg['positional_encoding'],
        bbox_head=dict(type='DETRHead', num_classes=NUM_CLASSES, embed_dims=32,
                       loss_cls=dict(type='CrossEntropyLoss', bg_cls_weight=0.1, use_sigmoid=False,
                                     loss_weight=1.0, class_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                       loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=[
            dict(type='ClassificationCost', weight=1.), dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)])),
        test_cfg=dict(max_per_img=10))


def test_a_detr_checkpoint_initialises_all_three_decoders():
    speaq_cfg = tiny_speaq_cfg()
    torch.manual_seed(1)
    detr = MODELS.build(detr_cfg(speaq_cfg))
    detr.init_weights()
    model = build(speaq_cfg, statistics=False)
    missing, unexpected = [], []
    state = detr.state_dict()
    result = model.load_state_dict(copy.copy(state), strict=False)
    missing, unexpected = result.missing_keys, result.unexpected_keys
    for stream in ('subject', 'object', 'relation'):
        layers = getattr(model.decoder, f'{stream}_layers')
        for ours, theirs in zip(layers.state_dict().values(), detr.decoder.layers.state_dict().values()):
            assert torch.equal(ours, theirs)
    assert torch.equal(model.subject_query_embedding.weight, detr.query_embedding.weight)
    assert torch.equal(model.encoder.layers[0].ffn.layers[1].weight, detr.encoder.layers[0].ffn.layers[1].weight)
    fresh_prefixes = ('object_query_embedding', 'relation_query_embedding', 'bbox_head.', 'decoder.subject_norm',
                      'decoder.relation_norm', 'decoder.object_pos', 'decoder.relation_pos',
                      'decoder.subject_graph', 'decoder.object_graph', 'decoder.relation_graph')
    assert missing and all(key.startswith(fresh_prefixes) for key in missing)
    assert set(unexpected) == {k for k in state if k.startswith(('bbox_head.', 'decoder.post_norm'))}
    # The same through mmengine's loader, which load_from uses.
    fresh = build(speaq_cfg, statistics=False)
    load_state_dict(fresh, copy.copy(state), strict=False)
    assert torch.equal(fresh.decoder.object_layers[1].cross_attn.attn.in_proj_weight,
                       detr.decoder.layers[1].cross_attn.attn.in_proj_weight)
