"""SpeaQRelationCriterion: loss terms by hand, per-sample weights, predicate reweighting, logging values."""
import math

import numpy as np
import pytest
import torch

from speaq_mm.models.dense_heads import SpeaQRelationHead
from speaq_mm.models.losses import SpeaQRelationCriterion, predicate_class_weights
from speaq_mm.models.utils import RelationPredictions, RelationTargets
from tests.models_fixtures import random_predictions


def criterion(**kwargs):
    args = dict(num_entity_classes=2, num_predicates=2, reweight_predicates=False)
    args.update(kwargs)
    return SpeaQRelationCriterion(**args)


def one_relation_target(sample_weight=1.0, source=None):
    return RelationTargets(
        entity_boxes=torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]]), entity_labels=torch.tensor([1, 0]),
        pairs=torch.tensor([[0, 1]]), predicate_labels=torch.tensor([1]),
        relation_boxes=torch.tensor([[0.5, 0.5, 0.4, 0.4]]), sample_weight=sample_weight, source=source)


def test_loss_terms_by_hand():
    # Two queries; query 0 is matched to the only relation, query 1 is background.
    box = torch.tensor([[0.4, 0.3, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1]])
    preds = RelationPredictions(
        subject_logits=torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]]), subject_boxes=box[None],
        object_logits=torch.tensor([[[0.5, 0.0, 0.0], [1.0, 1.0, 1.0]]]), object_boxes=box[None],
        predicate_logits=torch.tensor([[[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]]]), relation_boxes=box[None])
    matches = [(torch.tensor([0]), torch.tensor([0]))]
    losses, _, _ = criterion()(preds, [one_relation_target()], matches)

    def weighted_ce(logits, labels, weights):
        nll = -torch.log_softmax(torch.tensor(logits, dtype=torch.float32), -1)[torch.arange(2), torch.tensor(labels)]
        w = torch.tensor(weights)
        return float((w * nll).sum() / w.sum())

    # Entity classes weigh 1, no-object 0.1; predicates 1, no-relation 0.1 (no reweighting).
    assert losses['loss_ce_subject'].item() == pytest.approx(weighted_ce([[1, 2, 0], [0, 0, 3]], [1, 2], [1, 0.1]))
    assert losses['loss_ce_object'].item() == pytest.approx(weighted_ce([[0.5, 0, 0], [1, 1, 1]], [0, 2], [1, 0.1]))
    assert losses['loss_relation'].item() == pytest.approx(weighted_ce([[0, 1, 0], [2, 0, 1]], [1, 2], [1, 0.1]))
    # Subject box off by 0.1 in x: L1 0.1 (x5); IoU = 0.1*0.2 / 0.06 = 1/3 = GIoU (x2).
    assert losses['loss_bbox_subject'].item() == pytest.approx(5 * 0.1)
    assert losses['loss_giou_subject'].item() == pytest.approx(2 * (1 - 1 / 3))
    # Object box (0.4, 0.3) vs (0.7, 0.7): L1 0.3 + 0.4; disjoint, GIoU = -(enclosing - union) / enclosing.
    enclosing, union = 0.5 * 0.6, 0.08
    assert losses['loss_bbox_object'].item() == pytest.approx(5 * 0.7)
    assert losses['loss_giou_object'].item() == pytest.approx(2 * (1 + (enclosing - union) / enclosing))
    # Relation box x 0.3-0.5, y 0.2-0.4 vs x 0.3-0.7, y 0.3-0.7: L1 0.1 + 0.2 + 0.2 + 0.2; intersection
    # 0.2 x 0.1, union 0.18, enclosing 0.4 x 0.5.
    giou = 0.02 / 0.18 - (0.2 - 0.18) / 0.2
    assert losses['loss_bbox_relation'].item() == pytest.approx(5 * 0.7)
    assert losses['loss_giou_relation'].item() == pytest.approx(2 * (1 - giou))


def batch_of_two(weights, sources=(None, None), seed=0):
    preds = random_predictions(1, 2, 6, seed=seed).layer(0)
    first = RelationTargets(
        entity_boxes=torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.2, 0.3, 0.1]]),
        entity_labels=torch.tensor([1, 0, 5]), pairs=torch.tensor([[0, 1], [2, 0]]),
        predicate_labels=torch.tensor([1, 4]), relation_boxes=torch.tensor([[0.5, 0.5, 0.4, 0.4],
                                                                           [0.4, 0.25, 0.1, 0.1]]),
        sample_weight=weights[0], source=sources[0])
    second = RelationTargets(
        entity_boxes=torch.tensor([[0.2, 0.6, 0.2, 0.3], [0.6, 0.4, 0.2, 0.2]]), entity_labels=torch.tensor([3, 2]),
        pairs=torch.tensor([[1, 0]]), predicate_labels=torch.tensor([0]),
        relation_boxes=torch.tensor([[0.4, 0.5, 0.4, 0.2]]), sample_weight=weights[1], source=sources[1])
    matches = [(torch.tensor([4, 1, 2]), torch.tensor([0, 1, 1])), (torch.tensor([3]), torch.tensor([0]))]
    return preds, [first, second], matches


def losses_for(weights, **kwargs):
    preds, targets, matches = batch_of_two(weights, **kwargs)
    return criterion(num_entity_classes=6, num_predicates=6)(preds, targets, matches, with_logs=True)


def test_all_weights_one_is_exactly_the_unweighted_loss():
    unweighted, _, _ = losses_for([1.0, 1.0])
    preds, targets, matches = batch_of_two([1.0, 1.0])
    reference_weighted = criterion(num_entity_classes=6, num_predicates=6)
    direct, _, _ = reference_weighted(preds, targets, matches)
    assert unweighted.keys() == direct.keys()
    for name in unweighted:
        assert torch.equal(unweighted[name], direct[name]), name


def test_all_weights_half_is_exactly_half():
    full, _, _ = losses_for([1.0, 1.0])
    half, _, _ = losses_for([0.5, 0.5])
    for name in full:
        assert torch.equal(half[name] * 2, full[name]), name


def test_weights_scale_each_image_including_its_background_queries():
    full, _, _ = losses_for([1.0, 1.0])
    first_only, _, _ = losses_for([1.0, 0.0])
    second_only, _, _ = losses_for([0.0, 1.0])
    for name in full:
        assert (first_only[name] + second_only[name]).item() == pytest.approx(full[name].item(), rel=1e-6), name
        assert first_only[name].item() != pytest.approx(full[name].item()), name
    # An image without matches still weighs through its background queries.
    preds, targets, matches = batch_of_two([1.0, 1.0])
    matches[1] = (torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
    crit = criterion(num_entity_classes=6, num_predicates=6)
    with_second = crit(preds, targets, matches)[0]
    without_second = crit(preds, [targets[0], targets[1]._replace(sample_weight=0.0)], matches)[0]
    assert with_second['loss_relation'] != without_second['loss_relation']
    assert torch.equal(with_second['loss_bbox_relation'], without_second['loss_bbox_relation'])


def test_logging_values_are_detached_split_by_source_and_not_named_loss():
    losses, logs, source_logs = losses_for([1.0, 0.5], sources=('real', 'synthetic'))
    assert set(logs) | set(source_logs) == {
        'class_error_subject', 'class_error_object', 'real.relation_ce', 'real.relation_l1', 'real.relation_giou',
        'synthetic.relation_ce', 'synthetic.relation_l1', 'synthetic.relation_giou'}
    assert set(logs) == {'class_error_subject', 'class_error_object'}
    assert all('loss' not in name and not value.requires_grad for name, value in {**logs, **source_logs}.items())
    logs = dict(logs, **source_logs)
    # The synthetic split is its image's unweighted relation loss: the same as that image alone at weight 1.
    preds, targets, matches = batch_of_two([1.0, 1.0])
    alone = criterion(num_entity_classes=6, num_predicates=6)(
        RelationPredictions(*(f[1:] for f in preds)), targets[1:], matches[1:])[0]
    assert logs['synthetic.relation_ce'].item() == pytest.approx(alone['loss_relation'].item())
    assert logs['synthetic.relation_l1'].item() == pytest.approx(alone['loss_bbox_relation'].item())
    assert logs['synthetic.relation_giou'].item() == pytest.approx(alone['loss_giou_relation'].item())
    assert 0 <= logs['class_error_subject'].item() <= 100


def test_no_matches_gives_zero_box_losses_with_gradient():
    preds = random_predictions(1, 1, 4).layer(0)
    preds = RelationPredictions(*(f.clone().requires_grad_() for f in preds))
    empty = (torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
    losses, logs, _ = criterion(num_entity_classes=6, num_predicates=6)(preds, [one_relation_target()], [empty],
                                                                         with_logs=True)
    assert losses['loss_bbox_relation'].item() == 0 and losses['loss_giou_subject'].item() == 0
    sum(losses.values()).backward()
    assert math.isfinite(losses['loss_relation'].item())
    assert logs['class_error_subject'].item() == 100


def test_reweighting_matches_the_spec_table():
    # frequencies 0.01, 0.001, 0.0001, 0.07, 0.9189
    weights = predicate_class_weights([100, 10, 1, 700, 9189], 0.07, 1.5, 0.1, (0.01, 1000.0))
    assert weights.tolist() == pytest.approx([4.30, 24.0, 126.7, 1.0, 1.0, 0.1], rel=2e-3)
    assert predicate_class_weights([1, 3], 0.0, 0.0, 0.1, (0.01, 1000.0)).tolist() == pytest.approx([1, 1, 0.1])


def test_class_weights_are_clamped():
    weights = predicate_class_weights([1, 1_000_000], 1.0, 4.0, 0.1, (0.01, 1000.0))
    assert weights[0].item() == 1000.0 and weights[1].item() == 1.0


def test_criterion_needs_and_validates_statistics():
    # The head holds the one readiness state of the train statistics and checks the counts once.
    head = SpeaQRelationHead(2, 2, embed_dims=8, num_entity_queries=2, num_relation_queries=2,
                             criterion=dict(type='SpeaQRelationCriterion', reweight_predicates=True),
                             train_cfg=dict(assigner=dict(type='SpeaQTripletMatcher')))
    with pytest.raises(RuntimeError, match='set_train_statistics'):
        head.loss(None, None, None, [])
    with pytest.raises(ValueError, match='vg_train fg_rel_count: all predicate counts are zero'):
        head.set_train_statistics([0, 0], 'vg_train fg_rel_count')
    assert head.predicate_counts is None
    crit = criterion(reweight_predicates=True)
    crit.set_predicate_counts(np.array([900.0, 100.0]))
    assert crit.predicate_class_weights.tolist() == pytest.approx([1.0, 1.0, 0.1])
    assert 'predicate_class_weights' not in crit.state_dict()


@pytest.mark.parametrize('kwargs, message', [
    (dict(oversample_param=-0.1), 'oversample_param'),
    (dict(undersample_param=float('nan')), 'undersample_param'),
    (dict(no_relation_weight=0.0), 'no_relation_weight'),
    (dict(no_object_weight=-1.0), 'no_object_weight'),
    (dict(class_weight_range=(0.0, 10.0)), 'class_weight_range'),
    (dict(class_weight_range=(5.0, 1.0)), 'class_weight_range'),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        criterion(**kwargs)
